// A computation run on a thread of its own while the caller goes on, for the one place where a `set` process
// has two independent pieces of CPU work: the SHA-256 digests of the labels it backs up, and the decoding,
// planning and checking of those labels. The commands run on the main thread without the concurrency runtime
// (whose thread pool would cost more to start than the work it saves), so this is a bare POSIX thread.

import Synchronization
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A value computed on its own thread, started at creation; ``value`` waits for it. When no thread can be
/// started, the value is computed by the first caller of ``value`` instead.
package final class BackgroundWork<Value: Sendable>: Sendable {
    private struct State {
        var thread: pthread_t?
        var result: Value?
    }

    /// Hands the work to the thread; it writes its result here before it ends.
    private final class Box: @unchecked Sendable {
        let work: @Sendable () -> Value
        var result: Value?  // written by the thread, read only after pthread_join
        init(_ work: @escaping @Sendable () -> Value) { self.work = work }
    }

    private let box: Box
    private let state: Mutex<State>

    /// Starts `work` on a new thread.
    package init(_ work: @escaping @Sendable () -> Value) {
        let box = Box(work)
        self.box = box
        self.state = Mutex(State(thread: Self.start(box), result: nil))
    }

    /// Runs `box`'s work on a new thread; nil when none could be started.
    private static func start(_ box: Box) -> pthread_t? {
        startThread { box.result = box.work() }
    }

    /// The result: waits for the thread the first time (or computes it here when no thread was started).
    package var value: Value {
        state.withLock { s in
            if let result = s.result { return result }
            let result: Value
            if let thread = s.thread {
                pthread_join(thread, nil)  // happens-before: the thread's write of box.result is visible now
                s.thread = nil
                result = box.result!
            } else {
                result = box.work()
            }
            s.result = result
            return result
        }
    }

    deinit {
        // Never asked for: let the thread end on its own.
        state.withLock { s in if let thread = s.thread { pthread_detach(thread) } }
    }
}

/// What a new thread runs; not generic, because a C function pointer (the thread's entry) cannot be.
private final class ThreadEntry: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// Starts `run` on a new POSIX thread, joinable; nil when none could be started.
private func startThread(_ run: @escaping @Sendable () -> Void) -> pthread_t? {
    let entry = Unmanaged.passRetained(ThreadEntry(run))
    #if canImport(Darwin)
        // Darwin's pthread_t is an optional pointer and its start routine takes a non-optional argument.
        var thread: pthread_t?
        let started = pthread_create(&thread, nil, { raw in
            Unmanaged<ThreadEntry>.fromOpaque(raw).takeRetainedValue().run()
            return nil
        }, entry.toOpaque())
    #else
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { raw in
            Unmanaged<ThreadEntry>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, entry.toOpaque())
    #endif
    guard started == 0 else {
        entry.release()  // the thread that would have taken it never started
        return nil
    }
    return thread
}
