extension JSON {
    /// Applies `patch` to this value as RFC 7386 JSON Merge Patch says: objects merge member by
    /// member, `null` removes a member, anything else replaces.
    public func merged(with patch: JSON) -> JSON {
        var copy = self
        copy.merge(patch)
        return copy
    }

    /// ``merged(with:)`` in place: a fold's state is merged without copying its members.
    public mutating func merge(_ patch: JSON) {
        guard case .object(let patchMembers) = patch else {
            self = patch
            return
        }
        var existing: [(key: String, value: JSON)] = []
        if case .object(let e) = self { existing = e }
        self = .null  // the only reference to the members is now `existing`: no copy on write
        // Small objects (the common case: a fold merges a few members per event) are merged in
        // place with a scan, allocating nothing more.
        if existing.count + patchMembers.count <= MemberIndex.scanLimit {
            for (key, value) in patchMembers {
                let index = existing.firstIndex { $0.key.sameBytes(as: key) }
                if case .null = value {
                    if let index { existing.remove(at: index) }
                } else if let index {
                    existing[index].value.merge(value)
                } else {
                    existing.append((key, JSON.null.merged(with: value)))
                }
            }
            self = .object(existing)
            return
        }
        var members: [(key: String, value: JSON)?] = existing
        existing = []
        // Removed members leave a hole until the end, so positions stay valid.
        var positions = MemberIndex()
        for (key, value) in patchMembers {
            let index = positions.find(key, count: members.count, name: { members[$0]?.key })
            if case .null = value {
                if let index {
                    members[index] = nil
                    positions.remove(key)
                }
            } else if let index, members[index] != nil {
                members[index]!.value.merge(value)
            } else {
                positions.insert(key, at: members.count)
                members.append((key, JSON.null.merged(with: value)))
            }
        }
        self = .object(members.compactMap { $0 })
    }
}
