//! The `syscall` instruction's entry: it switches to the kernel stack, builds
//! a [`TrapFrame`](super::trapframe::TrapFrame) exactly as an interrupt would
//! (with vector `SYSCALL_VECTOR`) and joins the common trap path, which
//! returns with `iretq`.

use super::gdt::{KERNEL_CODE, KERNEL_DATA, USER_CODE, USER_DATA};
use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::structures::gdt::SegmentSelector;
use x86_64::VirtAddr;

core::arch::global_asm!(
    r#"
.section .text.syscall_entry, "ax"
.global syscall_entry
syscall_entry:
    mov [rip + syscall_user_rsp], rsp
    mov rsp, [rip + syscall_kernel_rsp]
    push {user_ss}
    push qword ptr [rip + syscall_user_rsp]
    push r11
    push {user_cs}
    push rcx
    push 0
    push {vector}
    jmp trap_common

.section .data.syscall_entry, "aw"
.balign 8
syscall_user_rsp:
    .quad 0
.global syscall_kernel_rsp
syscall_kernel_rsp:
    .quad 0
"#,
    user_ss = const USER_DATA as u64,
    user_cs = const USER_CODE as u64,
    vector = const super::trapframe::SYSCALL_VECTOR,
);

extern "C" {
    fn syscall_entry();
    static mut syscall_kernel_rsp: u64;
}

/// Enable `syscall` and point it at the entry stub.
pub fn init() {
    // SAFETY: written once at boot, before any user code runs.
    unsafe { syscall_kernel_rsp = super::gdt::kernel_stack_top() };
    LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
    Star::write(
        SegmentSelector(USER_CODE),
        SegmentSelector(USER_DATA),
        SegmentSelector(KERNEL_CODE),
        SegmentSelector(KERNEL_DATA),
    )
    .expect("segment layout matches the syscall MSRs");
    SFMask::write(RFlags::INTERRUPT_FLAG | RFlags::DIRECTION_FLAG | RFlags::TRAP_FLAG | RFlags::ALIGNMENT_CHECK);
    // SAFETY: enabling the syscall extension; the MSRs above are set.
    unsafe { Efer::update(|f| *f |= EferFlags::SYSTEM_CALL_EXTENSIONS | EferFlags::NO_EXECUTE_ENABLE) };
}
