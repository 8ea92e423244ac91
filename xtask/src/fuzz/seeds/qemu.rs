//! What QEMU itself builds: the device trees of the `virt` machines
//! (`dumpdtb`) and the fw_cfg items of q35 and virt, read by a tiny dump
//! ROM.

use super::corpus::{cat, Seeds};
use crate::util::{Context, Result};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `virt` machines of the test matrix (and a few of its variants):
/// name, machine options, -smp, -m.
const DT_MACHINES: &[(&str, &str, &str, &str)] = &[
    ("gicv3-smp1-512M", "gic-version=3", "1", "512M"),
    ("gicv3-smp4-5G", "gic-version=3", "4", "5G"),
    ("gicv3-smp8-2G", "gic-version=3", "8", "2G"),
    ("gicv2-smp1-2G", "gic-version=2", "1", "2G"),
    ("gicv2-smp4-512M", "gic-version=2", "4", "512M"),
    (
        "gicv2-el2-smp8-512M",
        "gic-version=2,virtualization=on",
        "8",
        "512M",
    ),
    ("el2-smp4-2G", "gic-version=3,virtualization=on", "4", "2G"),
    ("el2-smp8-5G", "gic-version=3,virtualization=on", "8", "5G"),
    (
        "el3-smp4-512M",
        "gic-version=3,secure=on,virtualization=on",
        "4",
        "512M",
    ),
    ("secure-smp1-2G", "gic-version=3,secure=on", "1", "2G"),
    (
        "gicv3-smp4-slots",
        "gic-version=3",
        "4",
        "1G,slots=2,maxmem=4G",
    ),
    ("smmuv3-smp2-1G", "gic-version=3,iommu=smmuv3", "2", "1G"),
    (
        "topology-2s2c2t",
        "gic-version=3",
        "8,sockets=2,cores=2,threads=2",
        "1G",
    ),
];

fn scratch() -> Result<PathBuf> {
    let d = crate::util::target_dir().join("fuzz-seeds");
    std::fs::create_dir_all(&d).ctx(format!("mkdir {}", d.display()))?;
    Ok(d)
}

fn qemu_base(program: &str) -> Command {
    let mut c = Command::new(program);
    c.args(["-display", "none", "-nodefaults", "-accel", "tcg"]);
    c.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    c
}

/// Runs QEMU to its exit, failing after `limit`.
fn run_qemu(mut c: Command, limit: Duration) -> Result<()> {
    let mut child = c.spawn().ctx("cannot start QEMU")?;
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().ctx("wait for QEMU")? {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            // The dump ROMs exit through isa-debug-exit (status 1) or
            // semihosting (0).
            return match st.code() {
                Some(0 | 1) => Ok(()),
                _ => Err(format!("QEMU exited with {st}: {}", err.trim())),
            };
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("QEMU did not finish within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A DT cut to its blocks: QEMU pads its blob to 1 MiB.
fn pack_dtb(mut b: Vec<u8>) -> Option<Vec<u8>> {
    let word = |b: &[u8], i: usize| {
        b.get(4 * i..4 * i + 4)
            .map(|w| u32::from_be_bytes(w.try_into().unwrap()) as usize)
    };
    if word(&b, 0)? != 0xd00d_feed {
        return None;
    }
    // Blocks: memory reservations (up to the terminating zero entry),
    // structure, strings.
    let (rsv, st, st_len, str_off, str_len) = (
        word(&b, 4)?,
        word(&b, 2)?,
        word(&b, 9)?,
        word(&b, 3)?,
        word(&b, 8)?,
    );
    let mut rsv_end = rsv;
    while b.get(rsv_end..rsv_end + 16)?.iter().any(|&x| x != 0) {
        rsv_end += 16;
    }
    let end = (rsv_end + 16).max(st + st_len).max(str_off + str_len);
    b.truncate(end);
    b[4..8].copy_from_slice(&(end as u32).to_be_bytes());
    Some(b)
}

pub(super) fn dtbs(s: &mut Seeds) -> Result<()> {
    let dir = scratch()?;
    for (name, opts, smp, mem) in DT_MACHINES {
        let path = dir.join(format!("{name}.dtb"));
        let _ = std::fs::remove_file(&path);
        let mut c = qemu_base("qemu-system-aarch64");
        c.arg("-M")
            .arg(format!("virt,{opts},dumpdtb={}", path.display()))
            .args(["-cpu", "max", "-smp", smp, "-m", mem, "-bios", "/dev/null"]);
        run_qemu(c, Duration::from_secs(60)).map_err(|e| format!("dumpdtb for {name}: {e}"))?;
        let blob = std::fs::read(&path).ctx(format!("read {}", path.display()))?;
        let packed = pack_dtb(blob).ok_or(format!("QEMU's DT for {name} has no FDT header"))?;
        s.add("dt", &format!("qemu-{name}.dtb"), packed, "QEMU dumpdtb");
    }
    Ok(())
}

/// A 16-bit x86 boot ROM (64 KiB, at 0xf0000 in real mode) that copies
/// fw_cfg items to the isa-debugcon port 0x402 and exits through
/// isa-debug-exit (port 0xf4). At 0x100 it reads a table of (le16 key,
/// le32 length) entries ended by key 0xffff; the reset vector jumps to 0.
///
/// ```text
///   cli; mov ax,0xf000; mov ds,ax; cld; mov si,0x100
/// next:  lodsw; cmp ax,0xffff; je done; mov dx,0x510; out dx,ax
///        lodsw; mov cx,ax; lodsw; mov bx,ax
/// inner: mov ax,bx; or ax,cx; jz next
///        mov dx,0x511; in al,dx; mov dx,0x402; out dx,al
///        sub cx,1; sbb bx,0; jmp inner
/// done:  mov al,0; out 0xf4,al; hlt; jmp $-1
/// ```
const X86_DUMP_ROM: &[u8] = &[
    0xfa, 0xb8, 0x00, 0xf0, 0x8e, 0xd8, 0xfc, 0xbe, 0x00, 0x01, 0xad, 0x83, 0xf8, 0xff, 0x74, 0x20,
    0xba, 0x10, 0x05, 0xef, 0xad, 0x89, 0xc1, 0xad, 0x89, 0xc3, 0x89, 0xd8, 0x09, 0xc8, 0x74, 0xea,
    0xba, 0x11, 0x05, 0xec, 0xba, 0x02, 0x04, 0xee, 0x83, 0xe9, 0x01, 0x83, 0xdb, 0x00, 0xeb, 0xea,
    0xb0, 0x00, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd,
];

fn x86_rom(items: &[(u16, u32)]) -> Vec<u8> {
    let mut rom = vec![0u8; 0x10000];
    rom[..X86_DUMP_ROM.len()].copy_from_slice(X86_DUMP_ROM);
    let mut t = 0x100;
    for &(key, len) in items.iter().chain(&[(0xffff, 0)]) {
        rom[t..t + 2].copy_from_slice(&key.to_le_bytes());
        rom[t + 2..t + 6].copy_from_slice(&len.to_le_bytes());
        t += 6;
    }
    // Reset vector: jmp far 0xf000:0000.
    rom[0xfff0..0xfff5].copy_from_slice(&[0xea, 0x00, 0x00, 0x00, 0xf0]);
    rom
}

/// An aarch64 flash image for `virt` that copies fw_cfg items (MMIO at
/// 0x0902_0000) to the PL011 at 0x0900_0000 and exits through
/// semihosting SYS_EXIT. At 0x70 it reads (le32 key, le32 length)
/// entries ended by key 0xffff.
///
/// ```text
///   mov x0,#0x09020000; mov x1,#0x09000000; mov w7,#0x301; str w7,[x1,#0x30]
///   adr x2,table
/// next:  ldr w3,[x2]; ldr w5,[x2,#4]; add x2,x2,#8; mov w9,#0xffff; cmp w3,w9
///        b.eq done; rev16 w4,w3; strh w4,[x0,#8]
/// inner: cbz w5,next; ldrb w6,[x0]; strb w6,[x1]; sub w5,w5,#1; b inner
/// done:  mov x0,#0x18; adr x1,exitblock; hlt #0xf000; 1: wfi; b 1b
/// exitblock: .quad 0x20026, 0
/// ```
const ARM_DUMP_ROM: &[u32] = &[
    0xd2a12040, 0xd2a12001, 0x52806027, 0xb9003027, 0x10000302, 0xb9400043, 0xb9400445, 0x91002042,
    0x529fffe9, 0x6b09007f, 0x54000100, 0x5ac00464, 0x79001004, 0x34ffff05, 0x39400006, 0x39000026,
    0x510004a5, 0x17fffffc, 0xd2800300, 0x100000a1, 0xd45e0000, 0xd503207f, 0x17ffffff, 0xd503201f,
    0x00020026, 0x00000000, 0x00000000, 0x00000000,
];

fn arm_rom(items: &[(u16, u32)]) -> Vec<u8> {
    let mut rom: Vec<u8> = ARM_DUMP_ROM.iter().flat_map(|w| w.to_le_bytes()).collect();
    for &(key, len) in items.iter().chain(&[(0xffff, 0)]) {
        rom.extend_from_slice(&u32::from(key).to_le_bytes());
        rom.extend_from_slice(&len.to_le_bytes());
    }
    rom.resize(0x10000, 0);
    rom
}

/// Key FILE_DIR (QEMU docs/specs/fw_cfg.rst) and the bytes read of it.
const FILE_DIR: u16 = 0x19;
const DIR_READ: u32 = 4 + 64 * 1024;

/// Reads fw_cfg `items` from a VM running the dump ROM. `arm`: virt, else
/// q35; `args`: the machine's options.
fn dump_items(arm: bool, args: &[&str], items: &[(u16, u32)], tag: &str) -> Result<Vec<u8>> {
    let dir = scratch()?;
    let rom_path = dir.join(format!("{tag}.rom"));
    let out = dir.join(format!("{tag}.out"));
    let _ = std::fs::remove_file(&out);
    let rom = if arm { arm_rom(items) } else { x86_rom(items) };
    std::fs::write(&rom_path, rom).ctx(format!("write {}", rom_path.display()))?;
    let mut c;
    if arm {
        c = qemu_base("qemu-system-aarch64");
        c.args([
            "-cpu",
            "max",
            "-semihosting-config",
            "enable=on,target=native",
        ])
        .arg("-chardev")
        .arg(format!("file,id=out,path={}", out.display()))
        .args(["-serial", "chardev:out"]);
    } else {
        c = qemu_base("qemu-system-x86_64");
        c.args(["-cpu", "max"])
            .arg("-chardev")
            .arg(format!("file,id=out,path={}", out.display()))
            .args(["-device", "isa-debugcon,iobase=0x402,chardev=out"])
            .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    }
    c.arg("-bios").arg(&rom_path).args(args);
    run_qemu(c, Duration::from_secs(120)).map_err(|e| format!("fw_cfg dump {tag}: {e}"))?;
    let data = std::fs::read(&out).ctx(format!("read {}", out.display()))?;
    let want: usize = items.iter().map(|i| i.1 as usize).sum();
    if data.len() != want {
        return Err(format!(
            "fw_cfg dump {tag}: got {} bytes, expected {want}",
            data.len()
        ));
    }
    Ok(data)
}

/// The files QEMU serves that the targets read, by fw_cfg name.
struct FwCfgDump {
    dir: Vec<u8>,
    files: Vec<(String, Vec<u8>)>,
}

impl FwCfgDump {
    fn file(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|f| f.0 == name)
            .map(|f| f.1.as_slice())
    }
}

const WANTED_FILES: &[&str] = &[
    "etc/e820",
    "etc/acpi/tables",
    "etc/table-loader",
    "etc/acpi/rsdp",
    "etc/smbios/smbios-anchor",
];

/// Two runs of the dump ROM: the directory, then the files named in it.
fn dump_fw_cfg(arm: bool, args: &[&str], tag: &str) -> Result<FwCfgDump> {
    let raw = dump_items(arm, args, &[(FILE_DIR, DIR_READ)], &format!("{tag}-dir"))?;
    let count = u32::from_be_bytes(raw[..4].try_into().unwrap()) as usize;
    let dir = raw[..(4 + 64 * count).min(raw.len())].to_vec();
    let mut want: Vec<(String, u16, u32)> = Vec::new();
    for e in dir[4..].chunks_exact(64) {
        let name_end = e[8..].iter().position(|&b| b == 0).unwrap_or(56);
        let name = String::from_utf8_lossy(&e[8..8 + name_end]).into_owned();
        if WANTED_FILES.contains(&name.as_str()) {
            let size = u32::from_be_bytes(e[..4].try_into().unwrap());
            let key = u16::from_be_bytes([e[4], e[5]]);
            want.push((name, key, size));
        }
    }
    let items: Vec<(u16, u32)> = want.iter().map(|w| (w.1, w.2)).collect();
    let data = dump_items(arm, args, &items, &format!("{tag}-files"))?;
    let mut files = Vec::new();
    let mut at = 0;
    for (name, _, size) in want {
        files.push((name, data[at..at + size as usize].to_vec()));
        at += size as usize;
    }
    Ok(FwCfgDump { dir, files })
}

/// Adds the seeds one machine's fw_cfg yields. `virt`: the table list of
/// `acpi::vmm::VIRT` (framing byte 1), else q35's.
fn add_fw_cfg_seeds(s: &mut Seeds, d: &FwCfgDump, name: &str, virt: bool) {
    const SRC: &str = "QEMU fw_cfg";
    s.add("fw_cfg_dir", &format!("qemu-{name}"), d.dir.clone(), SRC);
    if let Some(e) = d.file("etc/e820") {
        s.add("e820", &format!("qemu-{name}"), e.to_vec(), SRC);
    }
    if let Some(t) = d.file("etc/acpi/tables") {
        // QEMU pads the blob with zeros to 128 KiB steps; the tables end
        // where the padding starts (kept 4-byte aligned).
        let end = t.iter().rposition(|&b| b != 0).map_or(0, |i| (i + 4) & !3);
        let t = &t[..end.min(t.len())];
        s.add("memhp_tables", &format!("qemu-{name}"), t.to_vec(), SRC);
        if !virt {
            s.add("pcihp_tables", &format!("qemu-{name}"), t.to_vec(), SRC);
        }
        if let Some(l) = d.file("etc/table-loader") {
            // Framing: loader entry count, list selector, loader, tables.
            let n = (l.len() / 128).min(255);
            let v = cat(&[&[n as u8, u8::from(virt)], &l[..n * 128], t]);
            s.add("vmm_tables", &format!("qemu-{name}"), v, SRC);
            // Framing: script entry count (below 32), RSDP file length,
            // script, RSDP file, tables as QEMU serves them (their last
            // pointers may end in zeros): microvm's, which QEMU does not pad.
            let whole = d.file("etc/acpi/tables").unwrap_or_default();
            if let (Some(r), true) = (
                d.file("etc/acpi/rsdp"),
                !virt && l.len() / 128 < 32 && whole.len() < 1 << 16,
            ) {
                let v = cat(&[
                    &[(l.len() / 128) as u8, r.len().min(255) as u8],
                    l,
                    r,
                    whole,
                ]);
                s.add("acpi_loader", &format!("qemu-{name}"), v, SRC);
            }
        }
    }
    if let (Some(a), Some(t)) = (
        d.file("etc/smbios/smbios-anchor"),
        d.file("etc/smbios/smbios-tables"),
    ) {
        let n = [a.len().min(255) as u8];
        let v = cat(&[&0xf_1000u64.to_le_bytes(), &n, &a[..usize::from(n[0])], t]);
        s.add("smbios", &format!("qemu-{name}"), v, SRC);
    }
}

/// x86 machines of the matrix: microvm with a virtio-mmio device and with
/// PCIe; on q35 plain, CPU hotplug, DIMM slots,
/// NUMA, the IOMMUs, and PCIe root ports under ACPI PCI hotplug; on pc
/// (i440FX) plain and with DIMM slots and a pci-bridge under PIIX4's ACPI
/// PCI hotplug.
const X86_MACHINES: &[(&str, &str)] = &[
    ("q35-smp2-512M", "-M q35 -smp 2 -m 512M"),
    // microvm: its DSDT names a virtio-mmio transport once a device is on it.
    (
        "microvm-smp2",
        "-M microvm -smp 2 -m 512M -device virtio-rng-device",
    ),
    ("microvm-pcie", "-M microvm,pcie=on -smp 2 -m 512M"),
    ("q35-smp4-4G", "-M q35 -smp 4 -m 4G"),
    ("q35-maxcpus12", "-M q35 -smp 1,maxcpus=12 -m 512M"),
    ("q35-dimm-slots", "-M q35 -smp 2 -m 1G,slots=2,maxmem=4G"),
    (
        "q35-numa",
        "-M q35 -smp 2,sockets=2 -m 1G \
         -object memory-backend-ram,id=m0,size=512M -object memory-backend-ram,id=m1,size=512M \
         -numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1 \
         -numa dist,src=0,dst=1,val=21",
    ),
    (
        "q35-intel-iommu",
        "-M q35,kernel-irqchip=split -smp 2 -m 1G -device intel-iommu,intremap=on",
    ),
    (
        "q35-virtio-iommu",
        "-M q35 -smp 2 -m 1G -device virtio-iommu-pci",
    ),
    (
        "q35-root-ports",
        "-M q35 -smp 2 -m 1G -device pcie-root-port,id=rp0,chassis=1,slot=1 \
         -device pcie-root-port,id=rp1,chassis=2,slot=2,addr=0x3.0x1 \
         -device pcie-pci-bridge,id=br0,bus=rp1",
    ),
    ("pc-smp2-512M", "-M pc -smp 2 -m 512M"),
    (
        "pc-bridge-dimm-slots",
        "-M pc -smp 1,maxcpus=4 -m 1G,slots=2,maxmem=4G -device pci-bridge,id=br0,chassis_nr=1",
    ),
];

/// virt machines whose tables the firmware reads: DIMM slots (memory
/// hotplug), NUMA, the PPTT topology, the IORT of the SMMUv3.
const VIRT_MACHINES: &[(&str, &str)] = &[
    ("virt-gicv3-smp2", "-M virt,gic-version=3 -smp 2 -m 512M"),
    (
        "virt-dimm-slots",
        "-M virt,gic-version=3 -smp 2 -m 1G,slots=2,maxmem=4G",
    ),
    (
        "virt-topology",
        "-M virt,gic-version=3 -smp 8,sockets=2,cores=2,threads=2 -m 1G",
    ),
    (
        "virt-smmuv3",
        "-M virt,gic-version=3,iommu=smmuv3 -smp 2 -m 1G",
    ),
    (
        "virt-numa",
        "-M virt,gic-version=3 -smp 2,sockets=2 -m 1G \
         -object memory-backend-ram,id=m0,size=512M -object memory-backend-ram,id=m1,size=512M \
         -numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1",
    ),
];

pub(super) fn fw_cfg_dumps_x86(s: &mut Seeds) -> Result<()> {
    for (name, args) in X86_MACHINES {
        let args: Vec<&str> = args.split_whitespace().collect();
        let d = dump_fw_cfg(false, &args, name)?;
        add_fw_cfg_seeds(s, &d, name, false);
    }
    Ok(())
}

pub(super) fn fw_cfg_dumps_arm(s: &mut Seeds) -> Result<()> {
    for (name, args) in VIRT_MACHINES {
        let args: Vec<&str> = args.split_whitespace().collect();
        let d = dump_fw_cfg(true, &args, name)?;
        add_fw_cfg_seeds(s, &d, name, true);
    }
    Ok(())
}
