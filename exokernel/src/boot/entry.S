/* Kintsugi boot trampoline.
 *
 * Both boot paths land here in 32-bit protected mode with paging off:
 *   - QEMU -kernel (Multiboot1, via the a.out-kludge address fields below):
 *     eax = 0x2BADB002, ebx = physical address of the Multiboot1 info.
 *   - GRUB (Multiboot2, on BIOS or UEFI): eax = 0x36D76289, ebx = info.
 * The trampoline builds boot page tables (identity for the first GiB, the
 * direct map of the first 4 GiB at 0xFFFF800000000000, and the kernel image
 * at 0xFFFFFFFF80000000), enters long mode and calls `kernel_entry(magic,
 * info)` in the higher half on the kernel stack.
 */

.section .multiboot, "a"
.align 8
mb2_header_start:
    .long 0xE85250D6
    .long 0
    .long mb2_header_end - mb2_header_start
    .long -(0xE85250D6 + (mb2_header_end - mb2_header_start))
    /* framebuffer tag (optional): 1024x768, 32 bits per pixel if the
     * firmware has it; GRUB picks the nearest mode otherwise. */
    .short 5
    .short 1
    .long 20
    .long 1024
    .long 768
    .long 32
    .align 8
    /* end tag */
    .short 0
    .short 0
    .long 8
mb2_header_end:

.align 4
mb1_header:
    .long 0x1BADB002
    .long 0x00010003
    .long -(0x1BADB002 + 0x00010003)
    .long mb1_header
    .long __load_start_phys
    .long __load_end_phys
    .long __bss_end_phys
    .long _start32

.section .boot.text, "ax"
.code32
.global _start32
_start32:
    cli
    cld
    mov edi, eax
    mov esi, ebx
    mov esp, offset boot_tmp_stack_top

    /* PD0..PD3: 2 MiB pages covering physical 0..4 GiB (present, writable, huge). */
    mov ecx, 0
    mov eax, offset boot_pd
1:
    mov edx, ecx
    shl edx, 21
    or edx, 0x83
    mov [eax + ecx*8], edx
    mov dword ptr [eax + ecx*8 + 4], 0
    inc ecx
    cmp ecx, 2048
    jb 1b

    /* Identity PDPT: first GiB. Direct-map PDPT: 4 GiB. High PDPT: entry 510. */
    mov eax, offset boot_pd
    or eax, 3
    mov [boot_pdpt_low], eax
    mov [boot_pdpt_high + 510*8], eax
    mov ecx, 0
2:
    mov edx, ecx
    shl edx, 12
    add edx, offset boot_pd
    or edx, 3
    mov [boot_pdpt_dm + ecx*8], edx
    inc ecx
    cmp ecx, 4
    jb 2b

    mov eax, offset boot_pdpt_low
    or eax, 3
    mov [boot_pml4], eax
    mov eax, offset boot_pdpt_dm
    or eax, 3
    mov [boot_pml4 + 256*8], eax
    mov eax, offset boot_pdpt_high
    or eax, 3
    mov [boot_pml4 + 511*8], eax

    /* PAE + PGE, page tables, long mode + no-execute, paging + write-protect. */
    mov eax, cr4
    or eax, (1 << 5) | (1 << 7)
    mov cr4, eax
    mov eax, offset boot_pml4
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, (1 << 8) | (1 << 11)
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16)
    mov cr0, eax

    lgdt [boot_gdt_ptr]
    jmp fword ptr [boot_far_jump]

.code64
_start64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    mov edi, edi
    mov esi, esi
    movabs rsp, offset kernel_stack_top
    xor ebp, ebp
    movabs rax, offset kernel_entry
    call rax
3:
    cli
    hlt
    jmp 3b

.section .boot.data, "aw"
.align 16
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF   /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF   /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .short boot_gdt_end - boot_gdt - 1
    .long boot_gdt
boot_far_jump:
    .long _start64
    .short 0x08

.align 4096
.global boot_pml4
boot_pml4:
    .skip 4096
boot_pdpt_low:
    .skip 4096
boot_pdpt_dm:
    .skip 4096
boot_pdpt_high:
    .skip 4096
boot_pd:
    .skip 4096 * 4
boot_tmp_stack:
    .skip 1024
boot_tmp_stack_top:

.section .bss.kernel_stack, "aw", @nobits
.align 4096
.global kernel_stack_bottom
kernel_stack_bottom:
    .skip 65536
.global kernel_stack_top
kernel_stack_top:
