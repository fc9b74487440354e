//! The `virtio_drivers::Hal` of Kintsugi: DMA memory from the kernel,
//! BAR addresses translated through the MMIO mappings, and sharing of
//! buffers with the device.
//!
//! The trait's functions take no `self`, so the state is global behind a
//! spin lock: the DMA regions handed out by `dma_alloc` (virtqueue rings),
//! the regions drivers registered as *shared* (their staging buffers, which
//! are DMA memory already and so go to the device without a copy), and a
//! cache of bounce buffers. Any other buffer (user heap memory is not
//! physically contiguous) is copied through a bounce buffer: in on
//! `share`, back on `unshare`.

use crate::block::DeviceError;
use crate::dma::{DmaBuffer, PAGE};
use alloc::vec::Vec;
use core::ptr::NonNull;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

/// The HAL type to instantiate virtio-drivers' generics with.
pub struct KintsugiHal;

struct Region {
    virt: usize,
    len: usize,
    phys: u64,
}

#[derive(Default)]
struct State {
    /// Rings from `dma_alloc`.
    rings: Vec<DmaBuffer>,
    /// Registered zero-copy regions.
    shared: Vec<Region>,
    /// Bounce buffers lent out, by physical address.
    lent: Vec<(u64, DmaBuffer)>,
    /// Bounce buffers to reuse.
    spare: Vec<DmaBuffer>,
}

static STATE: spin::Mutex<Option<State>> = spin::Mutex::new(None);

fn with<T>(f: impl FnOnce(&mut State) -> T) -> T {
    let mut g = STATE.lock();
    f(g.get_or_insert_with(State::default))
}

/// Most bounce buffers kept for reuse.
const SPARE_BOUNCES: usize = 16;

/// A physically contiguous DMA buffer registered with the HAL, so buffers
/// inside it are given to the device as they are (no bounce copy).
/// Unregistered when dropped.
pub struct SharedDma {
    buf: DmaBuffer,
}

impl SharedDma {
    /// `bytes` of contiguous DMA memory, registered.
    pub fn new(bytes: usize) -> Result<SharedDma, DeviceError> {
        let buf = DmaBuffer::contiguous(bytes)?;
        let phys = buf.phys(0).ok_or(DeviceError::NoDevice)?;
        with(|s| s.shared.push(Region { virt: buf.ptr() as usize, len: buf.len(), phys }));
        Ok(SharedDma { buf })
    }

    /// The memory.
    pub fn buf(&self) -> &DmaBuffer {
        &self.buf
    }
}

impl Drop for SharedDma {
    fn drop(&mut self) {
        let virt = self.buf.ptr() as usize;
        with(|s| s.shared.retain(|r| r.virt != virt));
    }
}

fn zero_copy(s: &State, virt: usize, len: usize) -> Option<u64> {
    let end = virt.checked_add(len)?;
    s.shared.iter().find(|r| virt >= r.virt && end <= r.virt + r.len).map(|r| r.phys + (virt - r.virt) as u64).or_else(
        || {
            s.rings.iter().find_map(|b| {
                let start = b.ptr() as usize;
                (virt >= start && end <= start + b.len()).then(|| b.phys(virt - start)).flatten()
            })
        },
    )
}

// SAFETY: `dma_alloc` returns zeroed, page-aligned, contiguous memory that
// nothing else uses until `dma_dealloc`; `mmio_phys_to_virt` returns the
// uncached mapping of the BAR range (mapped before any transport is made);
// `share` returns a physical address valid for the whole buffer until
// `unshare`.
unsafe impl Hal for KintsugiHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        match DmaBuffer::contiguous(pages * PAGE) {
            Ok(buf) => {
                let phys = buf.phys(0).unwrap_or(0);
                let Some(ptr) = NonNull::new(buf.ptr()) else { return (0, NonNull::dangling()) };
                with(|s| s.rings.push(buf));
                (phys, ptr)
            }
            // virtio-drivers turns a zero address into `Error::DmaError`.
            Err(_) => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, vaddr: NonNull<u8>, _pages: usize) -> i32 {
        let virt = vaddr.as_ptr() as usize;
        let found = with(|s| {
            let i = s.rings.iter().position(|b| b.ptr() as usize == virt && b.phys(0) == Some(paddr))?;
            Some(s.rings.swap_remove(i))
        });
        // Dropped (unmapped and freed) outside the lock.
        match found {
            Some(_) => 0,
            None => -1,
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        // The transport is only made after every region its capabilities
        // name was validated against the BARs and mapped (virtio::open), so
        // the lookup cannot fail for a device that passed those checks.
        let virt = crate::mmio::lookup(paddr, size)
            .unwrap_or_else(|| panic!("virtio: BAR range {paddr:#x}+{size:#x} was not mapped"));
        NonNull::new(virt as *mut u8).unwrap_or_else(|| panic!("virtio: BAR mapped at address 0"))
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let virt = buffer.as_ptr() as *mut u8 as usize;
        let len = buffer.len();
        if let Some(phys) = with(|s| zero_copy(s, virt, len)) {
            return phys;
        }
        let spare = with(|s| {
            let best =
                s.spare.iter().enumerate().filter(|(_, b)| b.len() >= len).min_by_key(|(_, b)| b.len()).map(|(i, _)| i);
            best.map(|i| s.spare.swap_remove(i))
        });
        let bounce = match spare {
            Some(b) => b,
            None => DmaBuffer::contiguous(len.next_power_of_two().max(PAGE))
                .unwrap_or_else(|e| panic!("virtio: no memory for a {len}-byte bounce buffer: {e}")),
        };
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller guarantees `buffer` is valid for reads of
            // `len` bytes for the duration of this call.
            let src = unsafe { core::slice::from_raw_parts(virt as *const u8, len) };
            bounce.copy_in(0, src);
        } else {
            bounce.zero(0, len);
        }
        let phys = bounce.phys(0).unwrap_or(0);
        with(|s| s.lent.push((phys, bounce)));
        phys
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let bounce = with(|s| {
            let i = s.lent.iter().position(|(p, _)| *p == paddr)?;
            Some(s.lent.swap_remove(i).1)
        });
        let Some(bounce) = bounce else { return }; // zero-copy: nothing to do
        if direction != BufferDirection::DriverToDevice {
            let len = buffer.len();
            // SAFETY: the caller guarantees `buffer` is valid for writes and
            // not otherwise accessed during this call.
            let dst = unsafe { core::slice::from_raw_parts_mut(buffer.as_ptr() as *mut u8, len) };
            bounce.copy_out(0, dst);
        }
        with(|s| {
            if s.spare.len() < SPARE_BOUNCES {
                s.spare.push(bounce);
            }
        });
    }
}
