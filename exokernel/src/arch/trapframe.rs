//! The register image saved at every kernel entry.

/// Registers as the entry stubs push them (lowest address first). The same
/// layout is used for interrupts, exceptions and syscalls (whose stub builds
/// the hardware part by hand), and it is what each process keeps as its
/// saved context.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Interrupt vector, or [`SYSCALL_VECTOR`] for the syscall instruction.
    pub vector: u64,
    /// The exception's error code (0 when it has none).
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Pseudo-vector of the syscall stub (outside the IDT's range).
pub const SYSCALL_VECTOR: u64 = 0x100;

impl TrapFrame {
    /// Whether the CPU was in user mode when it entered the kernel.
    pub fn from_user(&self) -> bool {
        self.cs & 3 == 3
    }

    /// A frame that starts user code at `rip` with stack `rsp` and `rdi` set.
    pub fn new_user(rip: u64, rsp: u64, rdi: u64) -> TrapFrame {
        TrapFrame {
            rip,
            rsp,
            rdi,
            cs: super::gdt::USER_CODE as u64,
            ss: super::gdt::USER_DATA as u64,
            rflags: 0x202,
            ..TrapFrame::default()
        }
    }

    /// The syscall arguments in ABI order.
    pub fn syscall_args(&self) -> [u64; 6] {
        [self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9]
    }
}
