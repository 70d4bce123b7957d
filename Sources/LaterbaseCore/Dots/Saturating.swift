/// Sums that stop at the ends of the type instead of trapping: for numbers that come from
/// outside (a peer's seqs and heads, an application's quantities), where an overflow must not
/// stop the node.
extension FixedWidthInteger {
    /// `self + other`, or the type's bound in the direction of the overflow.
    public func saturatingAdd(_ other: Self) -> Self {
        let (sum, overflow) = addingReportingOverflow(other)
        guard overflow else { return sum }
        return other > 0 ? .max : .min
    }
}
