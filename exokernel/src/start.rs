//! Boot: bring the machine up in order and start the first process.
//!
//! console -> heap -> boot information -> frames -> kernel page tables ->
//! GDT/IDT/syscall -> ACPI, APICs and timer -> init from the boot module
//! named `init`, holding the root resource and every boot module.

use crate::arch::{self, trapframe::TrapFrame};
use crate::boot::{self, Region};
use crate::mem::{frames, heap, paging};
use crate::object::{KObject, MemoryObject, Resource};
use crate::process::{self, Blueprint};
use crate::sched::{Kernel, KERNEL};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use kintsugi_abi::{ResourceKind, Rights, PAGE_SIZE};

extern "C" {
    static __load_start_phys: u8;
    static __bss_end_phys: u8;
}

/// RAM as the boot loader reported it (device resources must avoid it).
pub static RAM: spin::Once<Vec<Region>> = spin::Once::new();

/// Called by the boot trampoline in long mode, on the kernel stack.
#[no_mangle]
pub extern "C" fn kernel_entry(magic: u32, info: u32) -> ! {
    crate::console::init();
    heap::init();
    kprintln!("Kintsugi exokernel starting");
    let Some(bi) = boot::parse(magic, info as u64) else {
        panic!("not started by a Multiboot loader (magic {magic:#x})");
    };
    let (kstart, kend) = (core::ptr::addr_of!(__load_start_phys) as u64, core::ptr::addr_of!(__bss_end_phys) as u64);
    let mut reserved = Vec::from([Region { start: kstart, end: kend }]);
    reserved.extend(bi.modules.iter().map(|m| Region { start: m.start, end: m.end.div_ceil(PAGE_SIZE) * PAGE_SIZE }));
    let pages = frames::init(&bi.ram, &reserved);
    let max_phys = bi.ram.iter().map(|r| r.end).max().unwrap_or(0);
    let d = bi.display;
    let screen =
        if d.kind == kintsugi_abi::DISPLAY_NONE { 0..0 } else { d.address..d.address.saturating_add(d.span()) };
    paging::finish_kernel_tables(max_phys, screen).expect("memory for the direct map");
    RAM.call_once(|| bi.ram.clone());
    crate::console::init_screen(bi.display);
    kprintln!(
        "boot: {} , {} MiB usable, {} modules, cmdline '{}'",
        bi.protocol,
        (pages * PAGE_SIZE) >> 20,
        bi.modules.len(),
        bi.cmdline
    );
    match d.kind {
        kintsugi_abi::DISPLAY_RGB => {
            kprintln!("screen: framebuffer {}x{}x{} at {:#x}", d.width, d.height, d.bpp, d.address)
        }
        kintsugi_abi::DISPLAY_TEXT => kprintln!("screen: VGA text mode {}x{} at {:#x}", d.width, d.height, d.address),
        _ => kprintln!("screen: none"),
    }
    // A deliberate panic, to show what one looks like (the screen test).
    if bi.cmdline.split_whitespace().any(|w| w == "kintsugi.panic") {
        panic!("asked for by kintsugi.panic on the command line");
    }

    arch::gdt::init();
    arch::idt::init();
    arch::syscall_entry::init();
    arch::pit::disable_legacy_pic();
    let platform = arch::acpi::init(bi.acpi);
    arch::apic::init(platform);
    crate::irq::init_console(platform);
    let tsc_hz = arch::apic::start_timer(crate::clock::TICK_HZ as u32);
    crate::profile::init(&bi.cmdline, platform);
    crate::clock::init(tsc_hz);
    kprintln!(
        "cpu: TSC {} MHz, {} I/O APIC(s); acpi: pm1 {:x?}, s5 {:?}",
        tsc_hz / 1_000_000,
        platform.ioapics.len(),
        platform.pm1_control,
        platform.s5
    );

    let mut kernel = Kernel::new();
    crate::object::reserve_wake_list(kintsugi_abi::MAX_PROCESSES);
    let init = bi.modules.iter().find(|m| m.name == "init").expect("a boot module named 'init'");
    let image = Arc::new(MemoryObject::pinned(init.start, (init.end - init.start).div_ceil(PAGE_SIZE)));
    let image_bytes = &image.contiguous_bytes().expect("modules are contiguous")[..(init.end - init.start) as usize];

    // init gets the root resource and every module, named in its arguments.
    let module_rights = Rights::READ | Rights::MAP | Rights::DUPLICATE | Rights::TRANSFER;
    let mut grants = Vec::from([(
        KObject::Resource(Arc::new(Resource { kind: ResourceKind::Root, base: 0, len: u64::MAX })),
        Rights::DERIVE | Rights::USE | Rights::DUPLICATE | Rights::TRANSFER,
    )]);
    let mut args = String::new();
    for m in bi.modules.iter().take(kintsugi_abi::MAX_START_HANDLES - 1) {
        let pages = (m.end - m.start).div_ceil(PAGE_SIZE);
        grants.push((KObject::Memory(Arc::new(MemoryObject::pinned(m.start, pages))), module_rights));
        args.push_str(&alloc::format!("{}:{} ", m.name, m.end - m.start));
    }
    let pid = kernel.alloc_pid();
    let init = process::create(Blueprint {
        image: image_bytes,
        image_object: Some(image.clone()),
        pid,
        parent: 0,
        name: b"init",
        args: args.trim_end().as_bytes(),
        grants,
        stack_pages: 0,
        page_limit: 0,
        suspended: false,
        class: kintsugi_abi::SchedClass::Service,
    })
    .unwrap_or_else(|e| panic!("cannot start init: {e}"));
    kernel.add(init);

    let mut frame = TrapFrame::default();
    kernel.switch(&mut frame, None);
    *KERNEL.lock() = Some(kernel);
    kprintln!("kernel: starting init");
    arch::idt::enter(&frame)
}
