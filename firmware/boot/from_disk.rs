//! Where QEMU's payload comes from: `-kernel` (fw_cfg) when it is given,
//! else the first bootable disk in bus order, or the disk, partition and
//! entry `opt/org.hotstub/boot` names, with `opt/org.hotstub/cmdline`
//! appended to the entry's command line; cloud-hypervisor's from the same
//! files where its build has fw_cfg. The hardware side opens the
//! disks; the choice is made here, where it is host-tested.

use super::machine::Qemu;
use super::payload;
use super::pipeline::Result;
use crate::disk::{self, Choice, DiskPayload};
use crate::platform::fw_cfg::{file, key, Transport};
use crate::{println, NAME};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// A disk as the hardware side opened it, with a name for the console
/// ("pci 00:03.0").
pub struct Candidate {
    pub name: String,
    pub dev: disk::Disk,
}

/// The fw_cfg files are a line of text each; a few KiB is plenty and caps
/// what a VMM can make the firmware allocate.
const TEXT_MAX: u32 = 4096;

/// Decides the payload source. `disks` is called only without `-kernel`
/// (so no device is touched then) and returns the virtio disks in bus
/// order. A chosen disk is kept in `src.disk` for the load step; the others
/// are dropped (and so reset) here. `image` names the kernel's format for
/// the error without either.
pub fn choose<T: Transport>(
    src: &mut Qemu<T>,
    image: &str,
    disks: impl FnOnce() -> Vec<Candidate>,
) -> Result<payload::From> {
    if src.fw.read_u32(key::KERNEL_SIZE) != 0 {
        return Ok(payload::From::FwCfg);
    }
    let hint = format!("start QEMU with -kernel <{image}> or give it a bootable virtio disk");
    choose_disk(src, &hint, disks, None)
}

/// [`choose`] for the firmware loaded as a PVH ELF by QEMU's `-kernel`:
/// fw_cfg's kernel is the firmware itself, so only a disk can hold Linux.
/// `append` (the start info's command line, QEMU's `-append`) is appended
/// to the entry's command line when `opt/org.hotstub/cmdline` is absent.
pub fn choose_pvh<T: Transport>(
    src: &mut Qemu<T>,
    disks: impl FnOnce() -> Vec<Candidate>,
    append: Option<String>,
) -> Result<payload::From> {
    choose_disk(src, NO_DISK_HINT, disks, append)
}

/// What the error without a disk says where the kernel can only come
/// from one.
pub const NO_DISK_HINT: &str = "give the VM a bootable virtio disk";

fn choose_disk<T: Transport>(
    src: &mut Qemu<T>,
    hint: &str,
    disks: impl FnOnce() -> Vec<Candidate>,
    append: Option<String>,
) -> Result<payload::From> {
    let choice_text = text(src, file::BOOT)?;
    let extra = text(src, file::CMDLINE)?.or(append);
    let choice = Choice::parse(choice_text.as_deref().unwrap_or(""))?;
    src.disk = Some(pick(&choice, extra, disks(), hint)?);
    Ok(payload::From::Disk)
}

/// cloud-hypervisor's choice: its fw_cfg (`fw`, only in CH builds with
/// its `fw_cfg` feature and `--fw-cfg-config`) gives the same two files
/// as QEMU's. `vmm` is CH's own line (the DT's bootargs on arm64, the
/// start info's on x86); the file's arguments go after it, so that the
/// user's win where both set a key. A kernel is never fw_cfg's here: CH
/// refuses `--kernel` beside `--firmware`.
pub fn pick_ch<T: Transport>(
    fw: Option<&mut Qemu<T>>,
    vmm: Option<String>,
    disks: Vec<Candidate>,
) -> Result<DiskPayload> {
    let (choice_text, user) = match fw {
        Some(src) => (text(src, file::BOOT)?, text(src, file::CMDLINE)?),
        None => (None, None),
    };
    let extra = join(vmm, user);
    let choice = Choice::parse(choice_text.as_deref().unwrap_or(""))?;
    pick(&choice, extra, disks, NO_DISK_HINT)
}

/// Two optional command-line pieces, space-separated; `None` when both
/// are absent or blank.
fn join(a: Option<String>, b: Option<String>) -> Option<String> {
    let parts: Vec<String> = [a, b]
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The first of `disks` (or the one `choice` names) that holds a kernel
/// and the entry `choice` names; `extra` goes after the entry's command
/// line; `hint` what to do when there is no disk. Shared by every VMM:
/// QEMU's choice comes from fw_cfg, cloud-hypervisor's
/// from its fw_cfg where it has one ([`pick_ch`]). Prints the
/// one line saying what boots.
pub fn pick(
    choice: &Choice,
    extra: Option<String>,
    disks: Vec<Candidate>,
    hint: &str,
) -> Result<DiskPayload> {
    if disks.is_empty() {
        crate::bail!("no kernel: {hint}");
    }
    let picked: Vec<(usize, Candidate)> = match choice.disk {
        Some(n) => match disks.into_iter().enumerate().nth(n as usize) {
            Some(d) => alloc::vec![d],
            None => crate::bail!("{}: there is no virtio disk{n}", file::BOOT),
        },
        None => disks.into_iter().enumerate().collect(),
    };
    let mut why = Vec::new();
    for (i, c) in picked {
        match disk::find(&c.dev, choice) {
            Ok(found) => {
                println!("{NAME}: booting disk{i} ({}), {found}", c.name);
                return Ok(DiskPayload::new(c.dev, found, extra));
            }
            Err(e) => why.push(format!("disk{i} ({}): {e}", c.name)),
        }
    }
    // One line for every disk tried: with one disk it is that disk's error.
    crate::bail!("no bootable virtio disk: {}", why.join("; "))
}

/// A text file from fw_cfg (UTF-8, NUL and surrounding white space
/// dropped); `None` when the VMM has none.
fn text<T: Transport>(src: &mut Qemu<T>, name: &str) -> Result<Option<String>> {
    let Some(raw) = src
        .file(name, TEXT_MAX)
        .map_err(|_| crate::err!("{name}: more than {TEXT_MAX} bytes"))?
    else {
        return Ok(None);
    };
    let s = String::from_utf8(raw).map_err(|_| crate::err!("{name} is not UTF-8 text"))?;
    Ok(Some(s.trim_end_matches('\0').trim().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::{BlockDevice, Error, SECTOR};
    use crate::platform::fw_cfg::testing::{dir, Fake};
    use crate::platform::fw_cfg::FwCfg;
    use alloc::rc::Rc;
    use core::cell::RefCell;

    /// A blank disk: no partition table.
    struct Blank(u64);

    impl BlockDevice for Blank {
        fn read_sectors(&mut self, _: u64, buf: &mut [u8]) -> core::result::Result<(), Error> {
            assert!(buf.len().is_multiple_of(SECTOR));
            buf.fill(0);
            Ok(())
        }
        fn sectors(&self) -> u64 {
            self.0
        }
    }

    fn qemu(items: &[(u16, &[u8])]) -> Qemu<Fake> {
        Qemu::open(FwCfg::probe(Fake::with(items)).unwrap()).unwrap()
    }

    fn blank() -> Vec<Candidate> {
        alloc::vec![Candidate {
            name: "pci 00:03.0".into(),
            dev: Rc::new(RefCell::new(Blank(2048))),
        }]
    }

    #[test]
    fn kernel_from_fw_cfg_wins_without_touching_disks() {
        let size = 4096u32.to_le_bytes();
        let mut q = qemu(&[(key::KERNEL_SIZE, &size)]);
        let from = choose(&mut q, "bzImage", || panic!("disks opened")).unwrap();
        assert_eq!(from, payload::From::FwCfg);
        assert!(q.disk.is_none());
    }

    #[test]
    fn no_kernel_and_no_disk_is_an_error() {
        let mut q = qemu(&[]);
        assert!(choose(&mut q, "bzImage", Vec::new).is_err());
    }

    #[test]
    fn a_disk_without_a_boot_configuration_is_an_error() {
        let mut q = qemu(&[]);
        assert!(choose(&mut q, "Image", blank).is_err());
        assert!(q.disk.is_none());
    }

    #[test]
    fn the_choice_must_parse_and_name_an_existing_disk() {
        let d = dir(&[(file::BOOT, 0x20, 7)]);
        let mut q = qemu(&[(key::FILE_DIR, &d), (0x20, b"disk1/2")]);
        assert!(choose(&mut q, "Image", blank).is_err(), "only disk0 exists");
        let d = dir(&[(file::BOOT, 0x20, 6)]);
        let mut q = qemu(&[(key::FILE_DIR, &d), (0x20, b"disk/x")]);
        assert!(choose(&mut q, "Image", blank).is_err(), "bad grammar");
    }

    #[test]
    fn cloud_hypervisor_takes_the_choice_from_fw_cfg_when_it_has_one() {
        let d = dir(&[(file::BOOT, 0x20, 7)]);
        let mut q = qemu(&[(key::FILE_DIR, &d), (0x20, b"disk1/2")]);
        assert!(pick_ch(Some(&mut q), None, blank()).is_err(), "only disk0");
        // Without fw_cfg the first disk is tried, and fails on its own.
        assert!(pick_ch::<Fake>(None, None, blank()).is_err());
        assert!(pick_ch::<Fake>(None, None, Vec::new()).is_err(), "no disk");
        let d = dir(&[(file::BOOT, 0x20, 6)]);
        let mut q = qemu(&[(key::FILE_DIR, &d), (0x20, b"disk/x")]);
        assert!(pick_ch(Some(&mut q), None, blank()).is_err(), "bad grammar");
    }

    #[test]
    fn cloud_hypervisor_line_comes_before_the_fw_cfg_file() {
        let s = |t: &str| Some(String::from(t));
        assert_eq!(join(s("earlycon=x"), s("quiet")), s("earlycon=x quiet"));
        assert_eq!(join(None, s("quiet")), s("quiet"));
        assert_eq!(join(s(" "), None), None);
        assert_eq!(join(None, None), None);
    }

    #[test]
    fn text_files_are_trimmed_and_capped() {
        let d = dir(&[(file::CMDLINE, 0x20, 9), (file::BOOT, 0x21, 5000)]);
        let big = alloc::vec![b'a'; 5000];
        let mut q = qemu(&[(key::FILE_DIR, &d), (0x20, b" quiet\n\0\0"), (0x21, &big)]);
        assert_eq!(
            text(&mut q, file::CMDLINE).unwrap().as_deref(),
            Some("quiet")
        );
        assert!(text(&mut q, file::BOOT).is_err());
        assert_eq!(text(&mut q, "opt/none").unwrap(), None);
    }
}
