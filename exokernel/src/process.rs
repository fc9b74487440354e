//! Processes: an address space, a handle table, a saved register context,
//! and what the holders of its handle see (its identity and, once it has
//! ended, how).
//!
//! A process is built from a checked ELF load plan (see `elf`): its image,
//! stack and start-info page are memory objects the process record keeps,
//! so they are charged to it and freed with it. The read-only pages of a
//! program that comes from a boot module are mapped from the module itself
//! (which nobody can write), so spawning copies only the writable pages and
//! every instance of a program runs the same physical code.

use crate::arch::trapframe::TrapFrame;
use crate::elf::{self, LoadPlan};
use crate::handle::HandleTable;
use crate::mapped::MappedObjects;
use crate::mem::paging::{AddressSpace, PageAccess};
use crate::mem::phys_to_virt;
use crate::object::{Account, Event, KObject, MemoryObject};
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use kintsugi_abi::{
    Error, MemFlags, ProcessInfo, ProcessState, Rights, SchedClass, StartInfo, CLOCK_PAGE_ADDR, DEFAULT_STACK_PAGES,
    MAX_ARGS, MAX_HANDLES, MAX_NAME, MAX_STACK_PAGES, PAGE_SIZE, STACK_TOP, START_INFO_ADDR, START_MAGIC,
};
use spin::Mutex;
use zerocopy::{FromZeros, IntoBytes};

/// Largest program image, in pages (64 MiB).
const MAX_IMAGE_PAGES: u64 = 16384;

/// Most exit watches on one process.
pub const MAX_WATCHERS: usize = 256;

/// A process id; never reused.
pub type Pid = crate::runqueue::Pid;

/// How a process ended.
#[derive(Clone, Copy, Debug)]
pub struct EndInfo {
    /// `Exited`, `Faulted` or `Killed`.
    pub state: ProcessState,
    /// Exit code (for `Exited`).
    pub code: i32,
    /// Exception vector (for `Faulted`).
    pub vector: u32,
    /// Exception error code.
    pub error: u32,
    /// Faulting address (page faults).
    pub addr: u64,
    /// Instruction pointer at the fault.
    pub ip: u64,
}

impl EndInfo {
    /// A clean exit with `code`.
    pub fn exited(code: i32) -> EndInfo {
        EndInfo { state: ProcessState::Exited, code, vector: 0, error: 0, addr: 0, ip: 0 }
    }

    /// Killed by a holder of its handle.
    pub fn killed() -> EndInfo {
        EndInfo { state: ProcessState::Killed, ..EndInfo::exited(0) }
    }
}

struct Status {
    ended: Option<EndInfo>,
    watchers: Vec<(Arc<Event>, u64)>,
}

/// What a process handle refers to: the identity of a process and its end.
/// It outlives the process record, so the exit status stays readable.
pub struct ProcessShared {
    /// Process id.
    pub pid: Pid,
    /// Creator's pid.
    pub parent: Pid,
    name: [u8; MAX_NAME],
    name_len: usize,
    /// Scheduling class, fixed at spawn.
    pub class: SchedClass,
    status: Mutex<Status>,
}

/// A handle's reference to a process.
pub type ProcessRef = Arc<ProcessShared>;

impl ProcessShared {
    /// The name given at spawn.
    pub fn name(&self) -> &str {
        core::str::from_utf8(&self.name[..self.name_len]).unwrap_or("?")
    }

    /// How the process ended, if it has.
    pub fn ended(&self) -> Option<EndInfo> {
        self.status.lock().ended
    }

    /// Signal `event` with `bits` when the process ends (now if it has).
    /// At most [`MAX_WATCHERS`] watches per process.
    pub fn watch(&self, event: Arc<Event>, bits: u64) -> Result<(), Error> {
        let mut s = self.status.lock();
        if s.ended.is_some() {
            drop(s);
            event.signal(bits);
        } else if s.watchers.len() >= MAX_WATCHERS {
            return Err(Error::LimitReached);
        } else {
            s.watchers.push((event, bits));
        }
        Ok(())
    }

    fn finish(&self, info: EndInfo) {
        let watchers = {
            let mut s = self.status.lock();
            s.ended = Some(info);
            core::mem::take(&mut s.watchers)
        };
        for (event, bits) in watchers {
            event.signal(bits);
        }
    }

    /// The info record, with the live fields filled from `live` if running.
    pub fn info(&self, live: Option<&Process>) -> ProcessInfo {
        let mut info = ProcessInfo {
            pid: self.pid,
            parent: self.parent,
            name_len: self.name_len as u32,
            sched_class: self.class as u32,
            ..Default::default()
        };
        info.name = self.name;
        if let Some(end) = self.ended() {
            info.state = end.state as u32;
            info.exit_code = end.code;
            info.fault_vector = end.vector;
            info.fault_error = end.error;
            info.fault_addr = end.addr;
            info.fault_ip = end.ip;
        } else if let Some(p) = live {
            info.state = p.state() as u32;
            info.pages = p.pages();
            info.cpu_ticks = p.cpu_ticks;
        }
        info
    }
}

/// Where a live process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Created suspended.
    Suspended,
    /// Running or in the ready queue.
    Ready,
    /// In `EventWait`.
    Blocked,
}

/// The events of one wait, in the caller's order: up to [`INLINE_EVENTS`]
/// inside the record (the common case: no heap allocation on the wait
/// path), more in a vector.
pub enum WaitEvents {
    /// A few events, inline.
    Inline([Option<Arc<Event>>; INLINE_EVENTS], usize),
    /// Many events.
    Heap(Vec<Arc<Event>>),
}

/// Events a wait keeps without allocating.
pub const INLINE_EVENTS: usize = 4;

impl WaitEvents {
    /// Room for `count` events.
    pub fn with_capacity(count: usize) -> WaitEvents {
        if count <= INLINE_EVENTS {
            WaitEvents::Inline(Default::default(), 0)
        } else {
            WaitEvents::Heap(Vec::with_capacity(count))
        }
    }

    /// Add an event at the end.
    pub fn push(&mut self, e: Arc<Event>) {
        match self {
            WaitEvents::Inline(items, len) if *len < INLINE_EVENTS => {
                items[*len] = Some(e);
                *len += 1;
            }
            WaitEvents::Inline(items, len) => {
                let mut v: Vec<Arc<Event>> = items[..*len].iter_mut().filter_map(Option::take).collect();
                v.push(e);
                *self = WaitEvents::Heap(v);
            }
            WaitEvents::Heap(v) => v.push(e),
        }
    }

    /// The events in order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Event>> {
        let (inline, heap): (&[Option<Arc<Event>>], &[Arc<Event>]) = match self {
            WaitEvents::Inline(items, len) => (&items[..*len], &[]),
            WaitEvents::Heap(v) => (&[], v),
        };
        inline.iter().flatten().chain(heap.iter())
    }
}

/// What a blocked process waits for.
pub struct Wait {
    /// The events, in the caller's order.
    pub events: WaitEvents,
    /// Clock time (ns) at which the wait times out.
    pub deadline: Option<u64>,
}

/// A live process.
pub struct Process {
    /// Identity and end status, shared with handles.
    pub shared: ProcessRef,
    /// Saved user registers.
    pub ctx: TrapFrame,
    /// Scheduling state.
    pub run: RunState,
    /// The handle table.
    pub handles: HandleTable<KObject>,
    /// Pages charged to the process.
    pub account: Arc<Account>,
    /// Timer ticks spent running.
    pub cpu_ticks: u64,
    /// The wait in progress, when blocked.
    pub wait: Option<Wait>,
    /// Image, stack and start page: held (never read) so they stay charged
    /// to the process and are freed with it.
    #[allow(dead_code)]
    own_memory: Vec<Arc<MemoryObject>>,
    /// The memory objects mapped with `mem_map`, held while mapped.
    pub mapped: MappedObjects<Arc<MemoryObject>>,
    /// The page tables (dropped last: see `Drop`).
    pub space: AddressSpace,
}

impl Process {
    /// The state as the ABI reports it.
    pub fn state(&self) -> ProcessState {
        match self.run {
            RunState::Suspended => ProcessState::Suspended,
            RunState::Ready => ProcessState::Runnable,
            RunState::Blocked => ProcessState::Blocked,
        }
    }

    /// Pages charged: allocations plus page tables.
    pub fn pages(&self) -> u64 {
        self.account.pages()
    }

    /// The process id.
    pub fn pid(&self) -> Pid {
        self.shared.pid
    }
}

/// Everything needed to build a process.
pub struct Blueprint<'a> {
    /// The ELF image.
    pub image: &'a [u8],
    /// The memory object holding `image`: when it is immutable (a boot
    /// module), the image's read-only pages are mapped from it, not copied.
    pub image_object: Option<Arc<MemoryObject>>,
    /// The new pid.
    pub pid: Pid,
    /// The creator.
    pub parent: Pid,
    /// The name.
    pub name: &'a [u8],
    /// The argument string.
    pub args: &'a [u8],
    /// Objects for the child's handle table, in order.
    pub grants: Vec<(KObject, Rights)>,
    /// Stack pages (0 = default).
    pub stack_pages: u64,
    /// Page limit (0 = none).
    pub page_limit: u64,
    /// Start suspended.
    pub suspended: bool,
    /// Scheduling class.
    pub class: SchedClass,
}

/// Build a process from a blueprint.
pub fn create(bp: Blueprint) -> Result<Process, Error> {
    if bp.name.len() > MAX_NAME || bp.args.len() > MAX_ARGS || bp.grants.len() > kintsugi_abi::MAX_START_HANDLES {
        return Err(Error::TooLarge);
    }
    let stack_pages = if bp.stack_pages == 0 { DEFAULT_STACK_PAGES } else { bp.stack_pages };
    if stack_pages > MAX_STACK_PAGES {
        return Err(Error::TooLarge);
    }
    let account = Arc::new(Account::new(bp.page_limit));
    let image_limit = match bp.page_limit {
        0 => MAX_IMAGE_PAGES,
        limit => limit.saturating_sub(stack_pages + 1).min(MAX_IMAGE_PAGES),
    };
    let shared = bp.image_object.as_ref().filter(|m| m.is_immutable());
    let plan = image_plan(bp.image, shared, image_limit)?;
    let mut space = AddressSpace::new(account.clone())?;
    let mut own_memory = Vec::new();

    load_image(&plan, bp.image, shared, &account, &mut space, &mut own_memory)?;

    let stack = Arc::new(MemoryObject::alloc(stack_pages, MemFlags::empty(), &account)?);
    let stack_base = STACK_TOP - stack_pages * PAGE_SIZE;
    let rw = PageAccess { write: true, execute: false };
    space.map_range(stack_base, stack_pages, rw, false, |i| stack.frame(i).unwrap_or(0))?;
    own_memory.push(stack);

    let mut handles = HandleTable::new(MAX_HANDLES);
    let mut info = StartInfo::new_zeroed();
    info.magic = START_MAGIC;
    info.pid = bp.pid;
    info.parent = bp.parent;
    info.name_len = bp.name.len() as u32;
    info.name[..bp.name.len()].copy_from_slice(bp.name);
    info.args_len = bp.args.len() as u32;
    info.args[..bp.args.len()].copy_from_slice(bp.args);
    info.handle_count = bp.grants.len() as u32;
    for (i, (object, rights)) in bp.grants.into_iter().enumerate() {
        info.handles[i] = handles.insert(object, rights)?.raw();
    }
    let start_page = Arc::new(MemoryObject::alloc(1, MemFlags::empty(), &account)?);
    let start_pa = start_page.frame(0).ok_or(Error::OutOfMemory)?;
    // SAFETY: the frame was just allocated for this page and is in the direct
    // map; StartInfo fits in one page.
    unsafe {
        let bytes = info.as_bytes();
        core::ptr::copy_nonoverlapping(bytes.as_ptr(), phys_to_virt(start_pa), bytes.len());
    }
    space.map(START_INFO_ADDR, start_pa, PageAccess { write: false, execute: false }, false)?;
    if let Some(clock) = crate::clock::page() {
        space.map(CLOCK_PAGE_ADDR, clock, PageAccess { write: false, execute: false }, false)?;
    }
    own_memory.push(start_page);

    let mut name = [0u8; MAX_NAME];
    name[..bp.name.len()].copy_from_slice(bp.name);
    let shared = Arc::new(ProcessShared {
        pid: bp.pid,
        parent: bp.parent,
        name,
        name_len: bp.name.len(),
        class: bp.class,
        status: Mutex::new(Status { ended: None, watchers: Vec::new() }),
    });
    Ok(Process {
        shared,
        ctx: TrapFrame::new_user(plan.plan.entry, STACK_TOP - 8, START_INFO_ADDR),
        run: if bp.suspended { RunState::Suspended } else { RunState::Ready },
        handles,
        account,
        cpu_ticks: 0,
        wait: None,
        own_memory,
        mapped: MappedObjects::default(),
        space,
    })
}

/// A checked image's load plan and page plan, kept per immutable image (a
/// boot module) so spawning the same program again skips the ELF checks.
struct ImagePlan {
    plan: LoadPlan,
    pages: Vec<elf::Page>,
}

/// Plans of boot modules, by the physical address of their first frame
/// (bounded by the number of modules: only the kernel makes immutable
/// objects, once per module at boot).
static PLANS: Mutex<BTreeMap<u64, Arc<ImagePlan>>> = Mutex::new(BTreeMap::new());

/// The plan of `image`, from the cache when `shared` (its immutable memory
/// object) was seen before.
fn image_plan(image: &[u8], shared: Option<&Arc<MemoryObject>>, max_pages: u64) -> Result<Arc<ImagePlan>, Error> {
    let key = shared.and_then(|m| m.frame(0));
    let cached = key.and_then(|k| PLANS.lock().get(&k).cloned());
    let plan = match cached {
        Some(p) => p,
        None => {
            let plan = elf::plan(image, MAX_IMAGE_PAGES)?;
            let pages = elf::pages(&plan, image.len() as u64);
            let p = Arc::new(ImagePlan { plan, pages });
            if let Some(k) = key {
                PLANS.lock().insert(k, p.clone());
            }
            p
        }
    };
    if plan.pages.len() as u64 > max_pages {
        return Err(Error::TooLarge);
    }
    Ok(plan)
}

/// Map the image: read-only pages straight from `shared` (the immutable
/// image object, when there is one), every other page a private copy of
/// the segments' file bytes in fresh frames.
fn load_image(
    plan: &ImagePlan,
    image: &[u8],
    shared: Option<&Arc<MemoryObject>>,
    account: &Arc<Account>,
    space: &mut AddressSpace,
    own_memory: &mut Vec<Arc<MemoryObject>>,
) -> Result<(), Error> {
    let is_private = |p: &elf::Page| shared.is_none() || p.source == elf::PageSource::Private;
    let private: Vec<u64> = plan.pages.iter().filter(|p| is_private(p)).map(|p| p.va).collect();
    let memory = match private.len() {
        0 => None,
        n => Some(Arc::new(MemoryObject::alloc(n as u64, MemFlags::empty(), account)?)),
    };
    if let Some(memory) = &memory {
        for s in plan.plan.segments.iter() {
            let mut done = 0u64;
            while done < s.file_len {
                let va = s.vaddr + done;
                let n = (PAGE_SIZE - va % PAGE_SIZE).min(s.file_len - done);
                if let Ok(i) = private.binary_search(&(va & !(PAGE_SIZE - 1))) {
                    let pa = memory.frame(i as u64).ok_or(Error::BadImage)?;
                    let src = &image[(s.file_offset + done) as usize..(s.file_offset + done + n) as usize];
                    // SAFETY: `pa` is a frame of the new image object (direct
                    // map); the copy stays inside it (n <= bytes left in the page).
                    unsafe {
                        core::ptr::copy_nonoverlapping(src.as_ptr(), phys_to_virt(pa + va % PAGE_SIZE), n as usize)
                    };
                }
                done += n;
            }
        }
    }
    let mut next_private = 0;
    for page in plan.pages.iter() {
        let access = PageAccess { write: page.write, execute: page.execute };
        let pa = match (page.source, shared, &memory) {
            (elf::PageSource::Shared(offset), Some(image), _) => image.frame(offset / PAGE_SIZE),
            (_, _, Some(memory)) => {
                next_private += 1;
                memory.frame(next_private - 1)
            }
            _ => None,
        };
        space.map(page.va, pa.ok_or(Error::BadImage)?, access, false)?;
    }
    own_memory.extend(memory);
    own_memory.extend(shared.cloned());
    Ok(())
}

impl Process {
    /// Record the end of the process for its watchers. The caller then drops
    /// the record, which frees its handles and memory.
    pub fn finish(&mut self, info: EndInfo) {
        if let Some(w) = self.wait.take() {
            for e in w.events.iter() {
                e.remove_waiter(self.pid());
            }
        }
        // Drop the handles before announcing the end, so that by the time a
        // watcher runs every link peer has seen "closed".
        drop(self.handles.drain());
        self.shared.finish(info);
    }
}
