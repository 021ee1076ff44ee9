#if canImport(Glibc)
import Glibc
#endif

/// A mutual-exclusion lock over pthread_mutex_t, heap-allocated so that it never moves.
final class Lock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init() { pthread_mutex_init(mutex, nil) }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Wraps pthread_mutex_lock.
    func lock() { pthread_mutex_lock(mutex) }

    /// Wraps pthread_mutex_unlock.
    func unlock() { pthread_mutex_unlock(mutex) }
}
