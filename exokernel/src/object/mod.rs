//! Kernel objects reachable through handles.
//!
//! Each object is reference-counted (`Arc`): handles, mappings, link queues
//! and bindings hold it; when the last reference goes, its `Drop` releases
//! what it owns (frames, a link peer's "closed" signal).

mod event;
mod link;
mod memory;
mod resource;

pub use event::{reserve_wake_list, take_wakeups, wakeups_pending, Event};
pub use link::{LinkEnd, LinkSide};
pub use memory::{Account, MemoryObject};
pub use resource::Resource;

use crate::process::ProcessRef;
use alloc::sync::Arc;
use kintsugi_abi::{Error, ObjectKind};

/// Anything a handle can name.
#[derive(Clone)]
pub enum KObject {
    /// Frames.
    Memory(Arc<MemoryObject>),
    /// A signal word.
    Event(Arc<Event>),
    /// One end of a link.
    Link(Arc<LinkEnd>),
    /// A process.
    Process(ProcessRef),
    /// A device resource.
    Resource(Arc<Resource>),
}

impl KObject {
    /// The object's kind.
    pub fn kind(&self) -> ObjectKind {
        match self {
            KObject::Memory(_) => ObjectKind::Memory,
            KObject::Event(_) => ObjectKind::Event,
            KObject::Link(_) => ObjectKind::Link,
            KObject::Process(_) => ObjectKind::Process,
            KObject::Resource(_) => ObjectKind::Resource,
        }
    }

    /// The memory object, or `WrongType`.
    pub fn memory(&self) -> Result<&Arc<MemoryObject>, Error> {
        match self {
            KObject::Memory(m) => Ok(m),
            _ => Err(Error::WrongType),
        }
    }

    /// The event, or `WrongType`.
    pub fn event(&self) -> Result<&Arc<Event>, Error> {
        match self {
            KObject::Event(e) => Ok(e),
            _ => Err(Error::WrongType),
        }
    }

    /// The link end, or `WrongType`.
    pub fn link(&self) -> Result<&Arc<LinkEnd>, Error> {
        match self {
            KObject::Link(l) => Ok(l),
            _ => Err(Error::WrongType),
        }
    }

    /// The process reference, or `WrongType`.
    pub fn process(&self) -> Result<&ProcessRef, Error> {
        match self {
            KObject::Process(p) => Ok(p),
            _ => Err(Error::WrongType),
        }
    }

    /// The resource, or `WrongType`.
    pub fn resource(&self) -> Result<&Arc<Resource>, Error> {
        match self {
            KObject::Resource(r) => Ok(r),
            _ => Err(Error::WrongType),
        }
    }
}
