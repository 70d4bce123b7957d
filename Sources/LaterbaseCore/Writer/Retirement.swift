import Foundation

/// A thread that frees what the writer is done with. Dropping a commit's last references (the
/// batches' parsed JSON trees, events, payloads) is hundreds of thousands of small frees a
/// second; done here, the writer spends that time on the next commit instead.
final class Retirement: @unchecked Sendable {
    private let condition = NSCondition()
    private var pending: [Any] = []
    private var closed = false
    private var started = false

    /// Starts the thread.
    func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !started else { return }
        started = true
        let thread = Thread { [self] in self.loop() }
        thread.name = "laterbase-retire"
        thread.start()
    }

    /// Hands over the last reference to `value`.
    func put(_ value: Any) {
        condition.lock()
        pending.append(value)
        if pending.count == 1 { condition.signal() }
        condition.unlock()
    }

    /// Frees what is pending, then stops the thread.
    func close() {
        condition.lock()
        closed = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        var batch: [Any] = []
        while true {
            condition.lock()
            while pending.isEmpty && !closed { condition.wait() }
            if pending.isEmpty && closed {
                condition.unlock()
                return
            }
            swap(&batch, &pending)
            condition.unlock()
            batch.removeAll(keepingCapacity: true)
        }
    }
}
