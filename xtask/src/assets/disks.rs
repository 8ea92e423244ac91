//! Bootable test disks built from the matrix's kernel and initramfs,
//! without mounting anything: each file system is made in a file of its
//! own (`mkfs.ext4 -d` from a staging directory; `mkfs.fat` and `mcopy`),
//! the partition table is written on the disk file by `sfdisk`, and the
//! file systems are copied in at their partitions' offsets. Three layouts
//! as distributions install them (Debian's cloud images with GRUB,
//! Fedora's with Boot Loader Spec entries, a U-Boot-style extlinux.conf on
//! MBR) and the broken disks the firmware must refuse. Each bootable
//! entry's command line carries `hotstub.disk_layout=<layout>`, which the
//! guest init reports.

use super::Guest;
use crate::build::Arch;
use crate::util::{run, step, Context, Result};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Debian packages the images are made with (sfdisk is in `fdisk`).
const DISK_TOOLS: &[&str] = &["e2fsprogs", "dosfstools", "mtools", "fdisk"];

/// Bumped when a recipe changes, so cached images are made again.
const RECIPE: u32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiskImage {
    /// GPT: BIOS boot (14), ESP (15), ext4 root (1) with /boot and an
    /// update-grub style grub.cfg, as Debian's cloud images.
    Debian,
    /// Debian's layout whose entry also asks the test init for its command
    /// channel and a full report (`CMD_KEYS`): for VMMs that give the
    /// firmware no command line of the harness's (cloud-hypervisor).
    DebianCmd,
    /// Debian's layout with the kernel gzip-compressed, as Debian installs
    /// `vmlinuz` on arm64.
    DebianGzip,
    /// GPT: ESP (1), ext4 /boot (2) with BLS entries, ext4 root (3).
    Fedora,
    /// MBR: one bootable ext4 partition with /boot/extlinux/extlinux.conf.
    Extlinux,
    /// 8 MiB of zeros.
    BadNoTable,
    /// Fedora's layout with both GPT headers' CRCs broken.
    BadCorruptGpt,
    /// Debian's layout cut short in the middle of its ext4 root, the
    /// partition table shrunk to match.
    BadTruncatedExt4,
    /// Debian's layout whose default GRUB entry names a missing kernel.
    BadGrubMissingKernel,
    /// Fedora's layout whose BLS entry has no `linux` line.
    BadBlsNoLinux,
    /// The extlinux layout with a 0-byte kernel.
    BadEmptyKernel,
}

impl DiskImage {
    /// The bootable layouts by name (`cargo xtask run --disk debian`).
    pub fn parse(s: &str) -> Option<DiskImage> {
        [
            DiskImage::Debian,
            DiskImage::DebianGzip,
            DiskImage::Fedora,
            DiskImage::Extlinux,
        ]
        .into_iter()
        .find(|d| d.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            DiskImage::Debian => "debian",
            DiskImage::DebianCmd => "debian-cmd",
            DiskImage::DebianGzip => "debian-gzip",
            DiskImage::Fedora => "fedora",
            DiskImage::Extlinux => "extlinux",
            DiskImage::BadNoTable => "bad-no-table",
            DiskImage::BadCorruptGpt => "bad-corrupt-gpt",
            DiskImage::BadTruncatedExt4 => "bad-truncated-ext4",
            DiskImage::BadGrubMissingKernel => "bad-grub-missing-kernel",
            DiskImage::BadBlsNoLinux => "bad-bls-no-linux",
            DiskImage::BadEmptyKernel => "bad-empty-kernel",
        }
    }
}

/// What `DebianCmd`'s entry adds (tests/guest/README.md): the command
/// channel, the ACPI table and kernel log dump, the CPU watcher, virtio_blk
/// loaded before a disk is hot-added, virtio_mem for a virtio-mem device,
/// hot-added memory onlined movable (so that virtio-mem can take it back),
/// and `quiet` as the harness's direct boots have it: the kernel's log is
/// in the dump, and the hotplug steps' commands reach the init over a
/// serial line the kernel does not write to at the same time (under CH,
/// a command sent while the kernel printed its memory hotplug lines to
/// the console got no answer in three runs of three; with `quiet` the
/// virtio-mem case passed).
const CMD_KEYS: &str = "quiet hotstub.action=cmd hotstub.dump=1 hotstub.autoonline=1 \
    hotstub.modules=virtio_blk,virtio_mem memhp_default_state=online_movable";
/// `path` compressed as Debian's kernel packages compress `vmlinuz` (gzip
/// -9).
fn gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).ctx(format!("read {}", path.display()))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&raw).ctx("gzip")?;
    gz.finish().ctx("gzip")
}

/// Fixed identities, so images are the same from run to run.
const ROOT_UUID: &str = "6b2f3c1e-9d4a-4e2b-8f6d-0a1b2c3d4e5f";
const BOOT_UUID: &str = "1f0e2d3c-4b5a-4697-8877-665544332211";
const ESP_SERIAL: &str = "A1B2C3D4";
const MIB: u64 = 1 << 20;

/// The image for `arch`'s guest, made when missing or older than the
/// kernel or initramfs it holds.
pub fn disk_image(arch: Arch, guest: &Guest, which: DiskImage) -> Result<PathBuf> {
    let dir = super::assets_dir(arch).join("disks");
    let out = dir.join(format!(
        "{}-{}-r{RECIPE}.img",
        which.name(),
        guest.kernel.version
    ));
    let newer = |p: &Path| -> bool {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        matches!((m(&out), m(p)), (Some(o), Some(i)) if o >= i)
    };
    if newer(&guest.kernel.image) && newer(&guest.initrd) {
        return Ok(out);
    }
    crate::host::ensure(&[], DISK_TOOLS)?;
    std::fs::create_dir_all(&dir).ctx("mkdir disks")?;
    step(format!("making test disk {}", out.display()));
    let work = dir.join(format!("work-{}", which.name()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).ctx("mkdir disk work dir")?;
    let tmp = out.with_extension("tmp");
    make(arch, guest, which, &work, &tmp, None)?;
    std::fs::rename(&tmp, &out).ctx("rename disk image")?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(out)
}

/// What goes in a file system: (path, content).
type Files = Vec<(String, Content)>;

enum Content {
    Bytes(Vec<u8>),
    Copy(PathBuf),
}

enum Fs {
    Fat(Files),
    Ext4 {
        uuid: &'static str,
        label: &'static str,
        files: Files,
    },
    /// Room only (the BIOS boot partition).
    Empty,
}

struct Part {
    /// The partition's number (GPT allows gaps: Debian uses 1, 14, 15).
    number: u32,
    /// GPT type GUID, or MBR type byte as hex.
    kind: &'static str,
    name: &'static str,
    mib: u64,
    fs: Fs,
}

/// GPT partition types (UEFI 2.10 5.3.3 and the Discoverable Partitions
/// Specification) and MBR ones.
const GPT_BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";
const GPT_ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const GPT_XBOOTLDR: &str = "BC13C2FF-59E6-4262-A352-B275FD6F7172";
const GPT_LINUX: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
const MBR_LINUX: &str = "83";

/// What `bench --disk` changes in the Debian layout: the entry's whole
/// command line, and files put on the ESP (path there, host file): the
/// EFI program a UEFI firmware starts from `EFI/BOOT/`.
pub struct BenchDisk {
    pub cmdline: String,
    pub esp: Vec<(String, PathBuf)>,
}

/// The command line of the Debian layout's entry.
pub fn debian_cmdline(arch: Arch) -> String {
    cmdline(arch, "debian")
}

/// The Debian layout with `bench`'s changes, made afresh at `out`.
pub fn bench_disk(arch: Arch, g: &Guest, bench: &BenchDisk, out: &Path) -> Result<()> {
    crate::host::ensure(&[], DISK_TOOLS)?;
    let work = out.with_extension("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).ctx("mkdir disk work dir")?;
    make(arch, g, DiskImage::Debian, &work, out, Some(bench))?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn make(
    arch: Arch,
    g: &Guest,
    which: DiskImage,
    work: &Path,
    out: &Path,
    bench: Option<&BenchDisk>,
) -> Result<()> {
    let ver = g.kernel.version.as_str();
    let kernel = Content::Copy(g.kernel.image.clone());
    let initrd = Content::Copy(g.initrd.clone());
    // Big enough for kernel and initramfs with room to spare.
    let payload_mib = (std::fs::metadata(&g.kernel.image).ctx("kernel size")?.len()
        + std::fs::metadata(&g.initrd).ctx("initrd size")?.len())
    .div_ceil(MIB)
        + 16;
    let (gpt, parts) = match which {
        DiskImage::BadNoTable => {
            File::create(out)
                .and_then(|f| f.set_len(8 * MIB))
                .ctx("blank disk")?;
            return Ok(());
        }
        DiskImage::Debian
        | DiskImage::DebianCmd
        | DiskImage::DebianGzip
        | DiskImage::BadGrubMissingKernel
        | DiskImage::BadTruncatedExt4 => {
            let missing = which == DiskImage::BadGrubMissingKernel;
            let (kernel, layout) = if which == DiskImage::DebianGzip {
                (Content::Bytes(gzip(&g.kernel.image)?), which.name())
            } else {
                (kernel, "debian")
            };
            let mut args = bench.map_or_else(|| cmdline(arch, layout), |b| b.cmdline.clone());
            if which == DiskImage::DebianCmd {
                args = args.replace(
                    " hotstub.disk_layout=debian",
                    &format!(" hotstub.disk_layout=debian-cmd {CMD_KEYS}"),
                );
            }
            let grub = grub_cfg(ver, missing, &args);
            let mut esp = vec![];
            let mut esp_mib = 16;
            for (at, file) in bench.map(|b| b.esp.as_slice()).unwrap_or_default() {
                esp_mib += std::fs::metadata(file)
                    .ctx("ESP file size")?
                    .len()
                    .div_ceil(MIB);
                esp.push((at.clone(), Content::Copy(file.clone())));
            }
            let esp_grub = format!(
                "search.fs_uuid {ROOT_UUID} root hd0,gpt1\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n"
            );
            let root = vec![
                (format!("boot/vmlinuz-{ver}"), kernel),
                (format!("boot/initrd.img-{ver}"), initrd),
                ("boot/grub/grub.cfg".into(), Content::Bytes(grub.into_bytes())),
                ("etc/fstab".into(), Content::Bytes(format!("UUID={ROOT_UUID} / ext4 rw,discard,errors=remount-ro,x-systemd.growfs 0 1\n").into_bytes())),
            ];
            let parts = vec![
                Part {
                    number: 14,
                    kind: GPT_BIOS_BOOT,
                    name: "",
                    mib: 3,
                    fs: Fs::Empty,
                },
                Part {
                    number: 15,
                    kind: GPT_ESP,
                    name: "",
                    mib: esp_mib,
                    fs: Fs::Fat(
                        [(
                            "EFI/debian/grub.cfg".into(),
                            Content::Bytes(esp_grub.into_bytes()),
                        )]
                        .into_iter()
                        .chain(esp)
                        .collect(),
                    ),
                },
                Part {
                    number: 1,
                    kind: GPT_LINUX,
                    name: "",
                    mib: payload_mib,
                    fs: Fs::Ext4 {
                        uuid: ROOT_UUID,
                        label: "",
                        files: root,
                    },
                },
            ];
            (true, parts)
        }
        DiskImage::Fedora | DiskImage::BadCorruptGpt | DiskImage::BadBlsNoLinux => {
            let no_linux = which == DiskImage::BadBlsNoLinux;
            let entry = bls_entry(arch, ver, no_linux);
            let boot = vec![
                (format!("vmlinuz-{ver}"), kernel),
                (format!("initramfs-{ver}.img"), initrd),
                (
                    format!("loader/entries/0123456789abcdef0123456789abcdef-{ver}.conf"),
                    Content::Bytes(entry.into_bytes()),
                ),
            ];
            let parts = vec![
                Part { number: 1, kind: GPT_ESP, name: "EFI System Partition", mib: 16, fs: Fs::Fat(vec![
                    ("EFI/fedora/grub.cfg".into(), Content::Bytes(format!("search --no-floppy --fs-uuid --set=dev {BOOT_UUID}\nset prefix=($dev)/grub2\nexport $prefix\nconfigfile $prefix/grub.cfg\n").into_bytes())),
                ]) },
                Part { number: 2, kind: GPT_XBOOTLDR, name: "boot", mib: payload_mib, fs: Fs::Ext4 { uuid: BOOT_UUID, label: "boot", files: boot } },
                Part { number: 3, kind: GPT_LINUX, name: "root", mib: 8, fs: Fs::Ext4 { uuid: ROOT_UUID, label: "fedora", files: vec![
                    ("etc/fstab".into(), Content::Bytes(format!("UUID={BOOT_UUID} /boot ext4 defaults 1 2\n").into_bytes())),
                ] } },
            ];
            (true, parts)
        }
        DiskImage::Extlinux | DiskImage::BadEmptyKernel => {
            let kernel = if which == DiskImage::BadEmptyKernel {
                Content::Bytes(Vec::new())
            } else {
                kernel
            };
            let root = vec![
                (format!("boot/vmlinuz-{ver}"), kernel),
                (format!("boot/initrd.img-{ver}"), initrd),
                (
                    "boot/extlinux/extlinux.conf".into(),
                    Content::Bytes(extlinux_conf(arch, ver).into_bytes()),
                ),
            ];
            let parts = vec![Part {
                number: 1,
                kind: MBR_LINUX,
                name: "",
                mib: payload_mib,
                fs: Fs::Ext4 {
                    uuid: ROOT_UUID,
                    label: "root",
                    files: root,
                },
            }];
            (false, parts)
        }
    };
    assemble(gpt, &parts, work, out)?;
    match which {
        DiskImage::BadCorruptGpt => {
            // One byte of each header's CRC32 (UEFI 2.10 5.3.2: offset 16 of
            // the header at LBA 1 and of the backup in the last LBA).
            let len = std::fs::metadata(out).ctx("disk size")?.len();
            let mut f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(out)
                .ctx("open disk")?;
            for at in [512 + 16, len - 512 + 16] {
                f.seek(SeekFrom::Start(at)).ctx("seek")?;
                f.write_all(&[0x5a]).ctx("corrupt GPT")?;
            }
        }
        DiskImage::BadTruncatedExt4 => {
            // Cut the disk 4 MiB into the root file system (its superblock
            // and group descriptors stay, the files' blocks go) and write
            // the partition table again to match, so only ext4 can notice.
            let root_start = (1 + 3 + 16) * MIB;
            let end = root_start + 4 * MIB;
            std::fs::OpenOptions::new()
                .write(true)
                .open(out)
                .and_then(|f| f.set_len(end + MIB))
                .ctx("truncate")?;
            let mut short = parts;
            short[2].mib = 4;
            short[2].fs = Fs::Empty;
            partition(gpt, &short, out)?;
        }
        _ => {}
    }
    Ok(())
}

/// Partitions start at 1 MiB and follow each other in the order given;
/// the disk ends with 1 MiB for the backup GPT.
fn assemble(gpt: bool, parts: &[Part], work: &Path, out: &Path) -> Result<()> {
    let total: u64 = 2 + parts.iter().map(|p| p.mib).sum::<u64>();
    File::create(out)
        .and_then(|f| f.set_len(total * MIB))
        .ctx("create disk")?;
    partition(gpt, parts, out)?;
    let mut at = MIB;
    for (i, p) in parts.iter().enumerate() {
        let img = work.join(format!("part{i}.img"));
        let size = p.mib * MIB;
        match &p.fs {
            Fs::Empty => {}
            Fs::Fat(files) => {
                let _ = std::fs::remove_file(&img);
                run(Command::new("mkfs.fat")
                    .args(["-C", "-n", "EFI", "-i", ESP_SERIAL])
                    .arg(&img)
                    .arg((size / 1024).to_string()))?;
                for (path, c) in files {
                    let mut dirs = String::new();
                    for d in path
                        .split('/')
                        .collect::<Vec<_>>()
                        .split_last()
                        .map(|x| x.1)
                        .unwrap_or(&[])
                    {
                        dirs.push('/');
                        dirs.push_str(d);
                        // mmd fails on a directory that exists; the files
                        // here share few, so each is made once.
                        let _ = Command::new("mmd")
                            .arg("-i")
                            .arg(&img)
                            .arg(format!("::{dirs}"))
                            .output();
                    }
                    let src = stage(work, &format!("fat{i}"), path, c)?;
                    run(Command::new("mcopy")
                        .arg("-i")
                        .arg(&img)
                        .arg(&src)
                        .arg(format!("::/{path}")))?;
                }
                copy_in(&img, out, at)?;
            }
            Fs::Ext4 { uuid, label, files } => {
                let root = work.join(format!("ext4-{i}"));
                for (path, c) in files {
                    stage(work, &format!("ext4-{i}"), path, c)?;
                }
                std::fs::create_dir_all(&root).ctx("mkdir staging")?;
                let _ = std::fs::remove_file(&img);
                let mut cmd = Command::new("mkfs.ext4");
                cmd.args([
                    "-q",
                    "-F",
                    "-t",
                    "ext4",
                    "-U",
                    uuid,
                    "-E",
                    "root_owner=0:0",
                    "-d",
                ])
                .arg(&root);
                if !label.is_empty() {
                    cmd.args(["-L", label]);
                }
                run(cmd.arg(&img).arg(format!("{}k", size / 1024)))?;
                copy_in(&img, out, at)?;
            }
        }
        at += size;
    }
    Ok(())
}

/// Writes the partition table with sfdisk (on the file: no loop device).
fn partition(gpt: bool, parts: &[Part], out: &Path) -> Result<()> {
    let mut script = String::from(if gpt {
        "label: gpt\nlabel-id: 3E5C2A10-7B6D-4F8E-9A1B-2C3D4E5F6071\n"
    } else {
        "label: dos\nlabel-id: 0x5eed1e55\n"
    });
    script.push_str("unit: sectors\n");
    let mut at = MIB / 512;
    for p in parts {
        let size = p.mib * MIB / 512;
        // sfdisk takes the partition's number from the trailing digits of
        // the device name it is given.
        script.push_str(&format!(
            "disk{} : start={at}, size={size}, type={}",
            p.number, p.kind
        ));
        if gpt && !p.name.is_empty() {
            script.push_str(&format!(", name=\"{}\"", p.name));
        }
        if !gpt {
            script.push_str(", bootable");
        }
        script.push('\n');
        at += size;
    }
    let mut child = Command::new("sfdisk")
        .args([
            "--quiet",
            "--no-reread",
            "--no-tell-kernel",
            "--wipe",
            "never",
        ])
        .arg(out)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .ctx("cannot run sfdisk (Debian package fdisk)")?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .ctx("sfdisk script")?;
    let st = child.wait().ctx("sfdisk")?;
    if !st.success() {
        return Err(format!("sfdisk failed on {}:\n{script}", out.display()));
    }
    Ok(())
}

/// Puts one file under `work/<tree>/<path>` and returns where.
fn stage(work: &Path, tree: &str, path: &str, c: &Content) -> Result<PathBuf> {
    let p = work.join(tree).join(path);
    std::fs::create_dir_all(p.parent().unwrap()).ctx("mkdir staging")?;
    match c {
        Content::Bytes(b) => std::fs::write(&p, b).ctx(format!("write {}", p.display()))?,
        Content::Copy(src) => {
            std::fs::copy(src, &p).ctx(format!("copy {}", src.display()))?;
        }
    }
    Ok(p)
}

fn copy_in(img: &Path, disk: &Path, at: u64) -> Result<()> {
    let data = std::fs::read(img).ctx(format!("read {}", img.display()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(disk)
        .ctx("open disk")?;
    f.seek(SeekFrom::Start(at)).ctx("seek")?;
    f.write_all(&data).ctx("write partition")
}

/// The kernel command line a distribution's installer leaves (x86 with
/// its serial console; arm64 without console=, as the matrix boots it, so
/// the console comes from SPCR), and the layout's marker.
fn cmdline(arch: Arch, layout: &str) -> String {
    let console = match arch {
        Arch::X86_64 => {
            " console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200 consoleblank=0"
        }
        Arch::Aarch64 => "",
    };
    format!("root=UUID={ROOT_UUID} ro{console} hotstub.disk_layout={layout}")
}

/// grub.cfg as Debian's update-grub (grub-mkconfig 2.06, 00_header and
/// 10_linux) writes it for a cloud image, shortened to what it says
/// about the entries.
fn grub_cfg(ver: &str, missing_kernel: bool, args: &str) -> String {
    let kernel = if missing_kernel {
        format!("/boot/vmlinuz-{ver}-missing")
    } else {
        format!("/boot/vmlinuz-{ver}")
    };
    let entry = |title: &str, id: &str, extra: &str, indent: &str| {
        format!(
            "{indent}menuentry '{title}' --class debian --class gnu-linux --class gnu --class os $menuentry_id_option '{id}' {{
{indent}\tload_video
{indent}\tinsmod gzio
{indent}\tif [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi
{indent}\tinsmod part_gpt
{indent}\tinsmod ext2
{indent}\tsearch --no-floppy --fs-uuid --set=root {ROOT_UUID}
{indent}\techo\t'Loading Linux {ver} ...'
{indent}\tlinux\t{kernel} {args}{extra}
{indent}\techo\t'Loading initial ramdisk ...'
{indent}\tinitrd\t/boot/initrd.img-{ver}
{indent}}}
"
        )
    };
    format!(
        "#
# DO NOT EDIT THIS FILE
#
# It is automatically generated by grub-mkconfig using templates
# from /etc/grub.d and settings from /etc/default/grub
#

### BEGIN /etc/grub.d/00_header ###
if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ \"${{next_entry}}\" ] ; then
   set default=\"${{next_entry}}\"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default=\"0\"
fi

if [ x\"${{feature_menuentry_id}}\" = xy ]; then
  menuentry_id_option=\"--id\"
else
  menuentry_id_option=\"\"
fi

export menuentry_id_option
function load_video {{
  insmod all_video
}}
serial --speed=115200
terminal_input console serial
terminal_output console serial
set timeout=0
### END /etc/grub.d/00_header ###

### BEGIN /etc/grub.d/10_linux ###
function gfxmode {{
\tset gfxpayload=\"${{1}}\"
}}
set linux_gfx_mode=
export linux_gfx_mode
{}submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-{ROOT_UUID}' {{
{}{}}}
### END /etc/grub.d/10_linux ###
",
        entry("Debian GNU/Linux", &format!("gnulinux-simple-{ROOT_UUID}"), "", ""),
        entry(&format!("Debian GNU/Linux, with Linux {ver}"), &format!("gnulinux-{ver}-advanced-{ROOT_UUID}"), "", "\t"),
        entry(&format!("Debian GNU/Linux, with Linux {ver} (recovery mode)"), &debian_recovery_id(ver), " single", "\t"),
    )
}

/// The GRUB id of the Debian layout's recovery entry for kernel `ver`,
/// which adds `single` to the command line: an entry other than the
/// default, for a boot choice (`opt/org.hotstub/boot`) to name.
pub fn debian_recovery_id(ver: &str) -> String {
    format!("gnulinux-{ver}-recovery-{ROOT_UUID}")
}

/// A Boot Loader Spec Type #1 entry as Fedora's kernel-install writes it.
fn bls_entry(arch: Arch, ver: &str, no_linux: bool) -> String {
    let linux = if no_linux {
        String::new()
    } else {
        format!("linux /vmlinuz-{ver}\n")
    };
    format!(
        "title Fedora Linux ({ver}) 41 (Cloud Edition)\nversion {ver}\n{linux}initrd /initramfs-{ver}.img\noptions {}\ngrub_users $grub_users\ngrub_arg --unrestricted\ngrub_class fedora\n",
        cmdline(arch, "fedora").replace("hotstub.disk_layout=fedora", "rootflags=subvol=root hotstub.disk_layout=fedora")
    )
}

/// extlinux.conf as Debian's u-boot-menu (u-boot-update) writes it.
fn extlinux_conf(arch: Arch, ver: &str) -> String {
    let args = cmdline(arch, "extlinux");
    format!(
        "## /boot/extlinux/extlinux.conf
##
## IMPORTANT WARNING
##
## The configuration of this file is generated automatically.
## Do not edit this file manually, use: u-boot-update

default l0
menu title U-Boot menu
prompt 0
timeout 50


label l0
\tmenu label Debian GNU/Linux trixie/sid {ver}
\tlinux /boot/vmlinuz-{ver}
\tinitrd /boot/initrd.img-{ver}
\tappend {args}

label l0r
\tmenu label Debian GNU/Linux trixie/sid {ver} (rescue target)
\tlinux /boot/vmlinuz-{ver}
\tinitrd /boot/initrd.img-{ver}
\tappend {args} systemd.unit=rescue.target
"
    )
}
