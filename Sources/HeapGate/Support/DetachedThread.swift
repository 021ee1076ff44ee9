#if canImport(Glibc)
import Glibc
#endif

/// Starts `body` on a new detached thread (pthread_create). Returns false, without running
/// `body`, when no thread could be made.
func startDetachedThread(_ body: @escaping () -> Void) -> Bool {
    final class Work {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }
    let context = Unmanaged.passRetained(Work(body)).toOpaque()
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    var thread = pthread_t()
    let started = pthread_create(&thread, &attributes, { context in
        Unmanaged<Work>.fromOpaque(context!).takeRetainedValue().body()
        return nil
    }, context)
    if started != 0 { Unmanaged<Work>.fromOpaque(context).release() }
    return started == 0
}
