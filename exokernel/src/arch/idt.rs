//! The interrupt descriptor table and the common trap entry and exit.
//!
//! All 256 vectors go through one generated stub each (see `build.rs`) into
//! `trap_common`, which saves the registers as a [`TrapFrame`] on the kernel
//! stack and calls `crate::trap::dispatch`. Leaving restores whatever frame
//! dispatch left there, so a context switch is just overwriting the frame.
//!
//! [`TrapFrame`]: super::trapframe::TrapFrame

use super::gdt::{DOUBLE_FAULT_IST, INTERRUPT_IST, KERNEL_CODE};
use super::trapframe::TrapFrame;
use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

core::arch::global_asm!(include_str!(concat!(env!("OUT_DIR"), "/trap_stubs.S")));

core::arch::global_asm!(
    r#"
.section .text.trap_common, "ax"
.global trap_common
trap_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    call {dispatch}
    cmp qword ptr [rsp + 15*8], {syscall_vector}
    je syscall_return
.global trap_return
trap_return:
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq

// Leaving into a context saved by the syscall stub: sysretq is much cheaper
// than iretq. Such a context's rip came from the CPU (rcx at the syscall),
// so it is canonical, and rcx/r11 are clobbered by the syscall ABI anyway.
syscall_return:
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    mov rcx, [rsp + 16]
    mov r11, [rsp + 32]
    mov rsp, [rsp + 40]
    sysretq

.global idle_loop
idle_loop:
    hlt
    jmp idle_loop
"#,
    dispatch = sym trap_dispatch_entry,
    syscall_vector = const super::trapframe::SYSCALL_VECTOR,
);

extern "C" fn trap_dispatch_entry(frame: &mut TrapFrame) {
    // An NMI can arrive anywhere, even inside the kernel: it must not take
    // the kernel lock. While the profiler samples, NMIs are its samples;
    // otherwise one asks for the stall report.
    if frame.vector == 2 {
        if crate::profile::running() {
            crate::profile::on_nmi(frame);
        } else {
            crate::stall_report::on_nmi(frame);
        }
        return;
    }
    crate::trap::dispatch(frame);
}

extern "C" {
    static trap_stub_table: [u64; 256];
    fn trap_return();
    fn idle_loop();
}

#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: spin::Once<Idt> = spin::Once::new();

/// The address the idle context runs at.
pub fn idle_entry() -> u64 {
    idle_loop as *const () as u64
}

/// Build and load the IDT: every vector is an interrupt gate (interrupts
/// stay off in the kernel) reachable only from ring 0. The double fault runs
/// on its own stack; device and timer interrupts always start at the top of
/// the kernel stack (see `gdt::INTERRUPT_IST`).
pub fn init() {
    let idt = IDT.call_once(|| {
        let mut gates =
            [Gate { offset_low: 0, selector: 0, ist: 0, attributes: 0, offset_mid: 0, offset_high: 0, reserved: 0 };
                256];
        for (v, gate) in gates.iter_mut().enumerate() {
            // SAFETY: reading the generated stub table (256 code addresses).
            let addr = unsafe { trap_stub_table[v] };
            *gate = Gate {
                offset_low: addr as u16,
                selector: KERNEL_CODE,
                ist: match v {
                    // NMI and machine check can arrive anywhere, even on the
                    // instruction before sysretq with the user stack loaded.
                    2 | 8 | 18 => DOUBLE_FAULT_IST as u8,
                    32.. => INTERRUPT_IST as u8,
                    _ => 0,
                },
                attributes: 0x8e, // present, DPL 0, 64-bit interrupt gate
                offset_mid: (addr >> 16) as u16,
                offset_high: (addr >> 32) as u32,
                reserved: 0,
            };
        }
        Idt(gates)
    });
    let ptr = DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: VirtAddr::new(idt as *const Idt as u64),
    };
    // SAFETY: the table is static and every gate points at a valid stub.
    unsafe { lidt(&ptr) };
}

/// Leave the kernel into `frame` for the first time, on a fresh kernel stack.
pub fn enter(frame: &TrapFrame) -> ! {
    let top = super::gdt::kernel_stack_top();
    let at = (top - core::mem::size_of::<TrapFrame>() as u64) & !0xf;
    // SAFETY: the kernel stack is ours and nothing on it is live any more
    // (this is the end of boot); trap_return pops exactly one TrapFrame.
    unsafe {
        core::ptr::write(at as *mut TrapFrame, *frame);
        core::arch::asm!("mov rsp, {0}", "jmp {1}", in(reg) at, sym trap_return, options(noreturn));
    }
}
