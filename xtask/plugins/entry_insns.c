/*
 * A QEMU TCG plugin for `cargo xtask bench --icount`: counts the guest
 * instructions executed until the first one at any of the `addr=`
 * arguments (the kernel's entry points), prints
 * `hotstub-entry-insns <count>` and ends QEMU.
 *
 * QEMU ships no plugin header in Debian, so the few calls used are
 * declared here as QEMU's plugin API documents them (docs/devel/tcg-plugins
 * and include/qemu/qemu-plugin.h of QEMU 10.0, API version 4); QEMU
 * checks `qemu_plugin_version` at load.
 *
 * Counting: one callback per executed instruction, not a count per
 * translation block, because under -icount QEMU ends a block early at an
 * I/O access and runs the rest again as a new block, which a per-block
 * count would see twice.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef void (*tb_trans_cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*exec_cb)(unsigned int vcpu, void *userdata);
/* enum qemu_plugin_cb_flags: QEMU_PLUGIN_CB_NO_REGS */
#define CB_NO_REGS 0

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, exec_cb cb, int flags,
                                            void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 4;

#define MAX_TARGETS 8
static uint64_t targets[MAX_TARGETS];
static int ntargets;
/* TCG runs one vCPU at a time under -icount, and only the boot CPU runs
 * before the kernel: one counter is enough. */
static uint64_t count;

/* `target`: 1 for an instruction at one of the addresses. */
static void insn(unsigned int vcpu, void *target)
{
    (void)vcpu;
    if (target) {
        printf("\nhotstub-entry-insns %llu\n", (unsigned long long)count);
        fflush(stdout);
        _exit(0);
    }
    count++;
}

static void translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *in = qemu_plugin_tb_get_insn(tb, i);
        uint64_t va = qemu_plugin_insn_vaddr(in);
        uintptr_t target = 0;
        for (int t = 0; t < ntargets; t++) {
            target |= va == targets[t];
        }
        qemu_plugin_register_vcpu_insn_exec_cb(in, insn, CB_NO_REGS, (void *)target);
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const void *info, int argc,
                                                               char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "addr=", 5) != 0 || ntargets == MAX_TARGETS) {
            fprintf(stderr, "entry_insns: unknown or extra argument '%s'\n", argv[i]);
            return -1;
        }
        targets[ntargets++] = strtoull(argv[i] + 5, NULL, 0);
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, translate);
    return 0;
}
