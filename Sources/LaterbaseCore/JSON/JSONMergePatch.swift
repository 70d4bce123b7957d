extension JSON {
    /// Applies `patch` to this value as RFC 7386 JSON Merge Patch says: objects merge member by
    /// member, `null` removes a member, anything else replaces.
    public func merged(with patch: JSON) -> JSON {
        guard case .object(let patchMembers) = patch else { return patch }
        var members: [(key: String, value: JSON)]
        if case .object(let existing) = self { members = existing } else { members = [] }
        for (key, value) in patchMembers {
            let index = members.firstIndex(where: { $0.key == key })
            if case .null = value {
                if let index { members.remove(at: index) }
            } else if let index {
                members[index].value = members[index].value.merged(with: value)
            } else {
                members.append((key, JSON.null.merged(with: value)))
            }
        }
        return .object(members)
    }
}
