//! Sessions' shared buffers, inside a resilient service.
//!
//! A client may open its session with a shared buffer (a memory object it
//! maps; see `libos::channel::resume`). The companion hands it to the
//! service with `Attach`, again to every process it restarts, and the
//! runtime maps it here until the session closes. A contract's requests
//! then name places in it (blk's `ReadShared` and `WriteShared`), and the
//! payload moves between the client's memory and the device without
//! passing through the rings, the companion or an encoder.
//!
//! The client may write its buffer at any time, so the service reaches it
//! only by copying ([`libos::handle::Mapping`] hands out no slices), and
//! must check every place a request names against the buffer's length.
//! Only idempotent requests should name places in it: the companion logs
//! request bytes, not the buffer, so a replay would find other data there.

use alloc::collections::BTreeMap;
use libos::abi::MapFlags;
use libos::handle::{Mapping, Memory, OwnedHandle};

/// Session -> its shared buffer, mapped in this process.
static SHARED: spin::Mutex<BTreeMap<u64, Mapping>> = spin::Mutex::new(BTreeMap::new());

/// Map `memory` as session `session`'s shared buffer (replacing one it
/// had). A handle that is not a mappable memory object is logged and
/// dropped: the session's shared requests then fail.
pub(crate) fn attach(session: u64, memory: OwnedHandle) {
    match Memory(memory).map(MapFlags::WRITE) {
        Ok(mapping) => {
            SHARED.lock().insert(session, mapping);
        }
        Err(e) => log::warn!("session {session}: its shared buffer cannot be mapped: {e}"),
    }
}

/// Session `session` closed: unmap its buffer.
pub(crate) fn detach(session: u64) {
    SHARED.lock().remove(&session);
}

/// Run `f` on session `session`'s shared buffer; `None` if it has none.
pub fn with<R>(session: u64, f: impl FnOnce(&Mapping) -> R) -> Option<R> {
    SHARED.lock().get(&session).map(f)
}
