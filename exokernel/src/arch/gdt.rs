//! The global descriptor table and the task-state segment.
//!
//! Segment order is fixed by the syscall MSRs: kernel code, kernel data,
//! user data, user code. The TSS gives the kernel stack for entries from
//! user mode and a separate stack for double faults.

use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::{PrivilegeLevel, VirtAddr};

/// Kernel code selector.
pub const KERNEL_CODE: u16 = 0x08;
/// Kernel data selector.
pub const KERNEL_DATA: u16 = 0x10;
/// User data selector (RPL 3).
pub const USER_DATA: u16 = 0x18 | 3;
/// User code selector (RPL 3).
pub const USER_CODE: u16 = 0x20 | 3;

/// IST slot used by the double-fault handler.
pub const DOUBLE_FAULT_IST: u16 = 1;
/// IST slot for interrupts: the top of the kernel stack, so an interrupt
/// that arrives while the CPU idles in ring 0 runs on the kernel stack just
/// like one from user mode.
pub const INTERRUPT_IST: u16 = 2;

const DF_STACK_SIZE: usize = 16 * 1024;
#[repr(align(16))]
#[allow(dead_code)] // only its address is used
struct Stack([u8; DF_STACK_SIZE]);
static mut DF_STACK: Stack = Stack([0; DF_STACK_SIZE]);

static TSS: spin::Once<TaskStateSegment> = spin::Once::new();
static GDT: spin::Once<GlobalDescriptorTable> = spin::Once::new();

mod symbols {
    extern "C" {
        pub static kernel_stack_top: u8;
    }
}

/// The top of the kernel stack (where entries from user mode start).
pub fn kernel_stack_top() -> u64 {
    core::ptr::addr_of!(symbols::kernel_stack_top) as u64
}

/// Load the GDT and TSS and reload the segment registers.
pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        tss.privilege_stack_table[0] = VirtAddr::new(kernel_stack_top());
        let df = core::ptr::addr_of!(DF_STACK) as u64 + DF_STACK_SIZE as u64;
        tss.interrupt_stack_table[(DOUBLE_FAULT_IST - 1) as usize] = VirtAddr::new(df);
        tss.interrupt_stack_table[(INTERRUPT_IST - 1) as usize] = VirtAddr::new(kernel_stack_top());
        tss
    });
    let gdt = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        gdt.append(Descriptor::kernel_code_segment());
        gdt.append(Descriptor::kernel_data_segment());
        gdt.append(Descriptor::user_data_segment());
        gdt.append(Descriptor::user_code_segment());
        gdt.append(Descriptor::tss_segment(tss));
        gdt
    });
    gdt.load();
    // SAFETY: the selectors name the descriptors just loaded, in the order
    // the constants above state.
    unsafe {
        CS::set_reg(SegmentSelector::new(1, PrivilegeLevel::Ring0));
        DS::set_reg(SegmentSelector::new(2, PrivilegeLevel::Ring0));
        ES::set_reg(SegmentSelector::new(2, PrivilegeLevel::Ring0));
        SS::set_reg(SegmentSelector::new(2, PrivilegeLevel::Ring0));
        load_tss(SegmentSelector::new(5, PrivilegeLevel::Ring0));
    }
}
