/*
 * A QEMU TCG plugin for `cargo xtask bench --icount`: counts the guest
 * instructions executed until the `skip`+1-th execution of an instruction
 * at any of the `addr=` arguments (the kernel's entry points), prints
 * `hotstub-entry-insns <count>` and ends QEMU.
 *
 * Arguments:
 * - `addr=A` (up to 8): the entry points.
 * - `skip=N`: let N entries pass first (a guest reboot runs the firmware
 *   again: N = 1 counts the warm boot, from the first instruction after
 *   the first entry to the second entry).
 * - `from=A` (up to 8): count afresh from each execution of an
 *   instruction at A (the reset vector: a warm boot's firmware; a
 *   function: one step of it).
 * - `profile=PATH`: also write, per guest address, how many instructions
 *   ran there (`<hex vaddr> <count>` lines, counted from the same point as
 *   the total), and per vCPU (`vcpu <n> <count>`), for a per-function
 *   profile against the firmware's symbols.
 *
 * QEMU ships no plugin header in Debian, so the few calls used are
 * declared here as QEMU's plugin API documents them (docs/devel/tcg-plugins
 * and include/qemu/qemu-plugin.h of QEMU 10.0, API version 4); QEMU
 * checks `qemu_plugin_version` at load.
 *
 * Counting: one callback per executed instruction, not a count per
 * translation block, because under -icount QEMU ends a block early at an
 * I/O access and runs the rest again as a new block, which a per-block
 * count would see twice. Every vCPU's instructions count: under -icount
 * they all advance the one virtual clock (secondaries parked in the
 * firmware cost the boot time too).
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
static uint64_t froms[MAX_TARGETS];
static int nfroms;
static unsigned long skip;
static const char *profile_path;
/* TCG runs one vCPU at a time under -icount: plain counters are enough. */
static uint64_t count;
#define MAX_VCPUS 1024
static uint64_t per_vcpu[MAX_VCPUS];

/* One slot per guest address seen, in an open-addressing table; the
 * callbacks get a pointer to theirs. */
struct slot {
    uint64_t va;
    uint64_t n;
    /* An entry point (the end of the count). */
    int target;
    /* A `from=` address (the count starts again). */
    int from;
    int used;
};
#define SLOTS (1u << 20)
static struct slot *slots;

static struct slot *slot_for(uint64_t va)
{
    uint64_t h = (va >> 2) * 0x9e3779b97f4a7c15ull;
    for (uint32_t i = 0; i < SLOTS; i++) {
        struct slot *s = &slots[(h + i) & (SLOTS - 1)];
        if (!s->used) {
            s->used = 1;
            s->va = va;
            return s;
        }
        if (s->va == va) {
            return s;
        }
    }
    fprintf(stderr, "entry_insns: address table full\n");
    _exit(1);
}

static void dump_profile(void)
{
    FILE *f = fopen(profile_path, "w");
    if (!f) {
        perror(profile_path);
        return;
    }
    for (unsigned v = 0; v < MAX_VCPUS; v++) {
        if (per_vcpu[v]) {
            fprintf(f, "vcpu %u %llu\n", v, (unsigned long long)per_vcpu[v]);
        }
    }
    for (uint32_t i = 0; i < SLOTS; i++) {
        if (slots[i].used && slots[i].n) {
            fprintf(f, "%llx %llu\n", (unsigned long long)slots[i].va,
                    (unsigned long long)slots[i].n);
        }
    }
    fclose(f);
}

static void restart(void)
{
    count = 0;
    memset(per_vcpu, 0, sizeof(per_vcpu));
    for (uint32_t i = 0; i < SLOTS; i++) {
        slots[i].n = 0;
    }
}

static void insn(unsigned int vcpu, void *data)
{
    struct slot *s = data;
    if (s->from) {
        restart();
    }
    if (s->target) {
        if (skip == 0) {
            if (profile_path) {
                dump_profile();
            }
            printf("\nhotstub-entry-insns %llu\n", (unsigned long long)count);
            fflush(stdout);
            _exit(0);
        }
        /* This entry passes: count afresh from the next instruction. */
        skip--;
        restart();
        return;
    }
    count++;
    per_vcpu[vcpu < MAX_VCPUS ? vcpu : MAX_VCPUS - 1]++;
    s->n++;
}

static void translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *in = qemu_plugin_tb_get_insn(tb, i);
        uint64_t va = qemu_plugin_insn_vaddr(in);
        struct slot *s = slot_for(va);
        for (int t = 0; t < ntargets; t++) {
            s->target |= va == targets[t];
        }
        for (int t = 0; t < nfroms; t++) {
            s->from |= va == froms[t];
        }
        qemu_plugin_register_vcpu_insn_exec_cb(in, insn, CB_NO_REGS, s);
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const void *info, int argc,
                                                               char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "addr=", 5) == 0 && ntargets < MAX_TARGETS) {
            targets[ntargets++] = strtoull(argv[i] + 5, NULL, 0);
        } else if (strncmp(argv[i], "from=", 5) == 0 && nfroms < MAX_TARGETS) {
            froms[nfroms++] = strtoull(argv[i] + 5, NULL, 0);
        } else if (strncmp(argv[i], "skip=", 5) == 0) {
            skip = strtoul(argv[i] + 5, NULL, 0);
        } else if (strncmp(argv[i], "profile=", 8) == 0) {
            profile_path = argv[i] + 8;
        } else {
            fprintf(stderr, "entry_insns: unknown or extra argument '%s'\n", argv[i]);
            return -1;
        }
    }
    slots = calloc(SLOTS, sizeof(*slots));
    if (!slots) {
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, translate);
    return 0;
}
