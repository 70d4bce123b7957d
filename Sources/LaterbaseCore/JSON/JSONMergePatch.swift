extension JSON {
    /// Applies `patch` to this value as RFC 7386 JSON Merge Patch says: objects merge member by
    /// member, `null` removes a member, anything else replaces.
    public func merged(with patch: JSON) -> JSON {
        guard case .object(let patchMembers) = patch else { return patch }
        var existing: [(key: String, value: JSON)] = []
        if case .object(let e) = self { existing = e }
        // Small objects (the common case: a fold merges a few members per event) are merged in
        // place with a scan, allocating nothing more.
        if existing.count + patchMembers.count <= MemberIndex.scanLimit {
            for (key, value) in patchMembers {
                let index = existing.firstIndex { $0.key.sameBytes(as: key) }
                if case .null = value {
                    if let index { existing.remove(at: index) }
                } else if let index {
                    existing[index].value = existing[index].value.merged(with: value)
                } else {
                    existing.append((key, JSON.null.merged(with: value)))
                }
            }
            return .object(existing)
        }
        var members: [(key: String, value: JSON)?] = existing
        // Removed members leave a hole until the end, so positions stay valid.
        var positions = MemberIndex()
        for (key, value) in patchMembers {
            let index = positions.find(key, count: members.count, name: { members[$0]?.key })
            if case .null = value {
                if let index {
                    members[index] = nil
                    positions.remove(key)
                }
            } else if let index, let member = members[index] {
                members[index] = (key: member.key, value: member.value.merged(with: value))
            } else {
                positions.insert(key, at: members.count)
                members.append((key, JSON.null.merged(with: value)))
            }
        }
        return .object(members.compactMap { $0 })
    }
}
