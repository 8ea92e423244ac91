//! Hand-made inputs.

use super::corpus::{cat, le16, Seeds};

/// Small inputs for the targets whose framing or rarely-seen paths no real
/// input covers.
pub(super) fn synthetic(s: &mut Seeds) {
    const SRC: &str = "synthetic";
    tpm_responses(s);
    // CPU lists: le16 possible CPUs, then the list (the matrix's policies
    // and the documented error cases).
    for (i, (possible, list)) in [
        (4u16, "0-1"),
        (4, "0-1,3"),
        (4, "0-x"),
        (8, "0,2-3,5\n"),
        (288, "0-287"),
        (16, " 0-3,8-11\0"),
        (4, "01"),
        (4, "1-0"),
        (4, "0,0"),
        (2, "99999999999999999999999"),
    ]
    .iter()
    .enumerate()
    {
        s.add(
            "cpulist",
            &format!("synthetic-{i}"),
            cat(&[&le16(*possible), list.as_bytes()]),
            SRC,
        );
    }
    // The hotplug channel: commands, guest writes, PSCI calls and time.
    for (i, cmds) in [
        &b"status\nenable 2\n"[..],
        b"enable 2-3\ndisable 3\nhelp\n",
        b"disable 0\nfrob\n\xff\n",
    ]
    .iter()
    .enumerate()
    {
        let mut v = vec![4u8, 0, cmds.len() as u8];
        v.extend_from_slice(cmds);
        // _OST success for vCPU 2 (slot 2, OST byte 3: valid), CPU_ON 2,
        // time passes.
        v.extend_from_slice(&[1, 2 * 8 + 7, 0x80, 2, 2, 4, 10]);
        s.add("hotplug_channel", &format!("synthetic-{i}"), v, SRC);
    }
    // Memory hotplug slot probes: status byte, then one answer per slot.
    for n in [0usize, 1, 2, 16, 255, 256] {
        let mut v = vec![0u8];
        v.extend(std::iter::repeat_n(0xff, n));
        v.push(0);
        s.add("memhp_slots", &format!("synthetic-{n}-slots"), v, SRC);
    }
    s.add("memhp_slots", "synthetic-no-block", vec![0xff, 0xff], SRC);
    s.add("memhp_slots", "synthetic-garbage", vec![0, 0xff, 0x12], SRC);
    // e820: RAM below and above 4 GiB with a reserved hole.
    let e = |a: u64, l: u64, t: u32| cat(&[&a.to_le_bytes(), &l.to_le_bytes(), &t.to_le_bytes()]);
    s.add(
        "e820",
        "synthetic-high-ram",
        cat(&[
            &e(0, 0x8000_0000, 1),
            &e(0x1_0000_0000, 0x8000_0000, 1),
            &e(0xfeff_c000, 0x4000, 2),
            &e(0x7fff_0000, 0x1_0000, 3),
        ]),
        SRC,
    );
    // SMBIOS: le64 table address, the anchor's length and the anchor, then
    // the structures (a bare type 0 and the end of table).
    let mut tables = vec![0u8; 0x1a];
    tables[1] = 0x1a;
    tables.extend_from_slice(&[0, 0, 127, 4, 0xff, 0xfe, 0, 0]);
    let mut sm3 = vec![0u8; 24];
    sm3[..5].copy_from_slice(b"_SM3_");
    sm3[6] = 24;
    sm3[7] = 3;
    s.add(
        "smbios",
        "synthetic-sm3",
        cat(&[&0xf_1000u64.to_le_bytes(), &[24], &sm3, &tables]),
        SRC,
    );
    let mut sm = vec![0u8; 31];
    sm[..4].copy_from_slice(b"_SM_");
    sm[5] = 31;
    sm[0x10..0x15].copy_from_slice(b"_DMI_");
    s.add(
        "smbios",
        "synthetic-sm21",
        cat(&[&0xf_1000u64.to_le_bytes(), &[31], &sm, &tables]),
        SRC,
    );
    // arm64 Image headers: le64 file size, le64 lowest base, the header.
    let mut img = vec![0u8; 64];
    img[16..24].copy_from_slice(&0x300_0000u64.to_le_bytes());
    img[24..32].copy_from_slice(&0xau64.to_le_bytes());
    img[56..60].copy_from_slice(b"ARM\x64");
    let sizes = cat(&[&0x200_0000u64.to_le_bytes(), &0x4010_0000u64.to_le_bytes()]);
    s.add("arm64_image", "synthetic-image", cat(&[&sizes, &img]), SRC);
    let mut gz = vec![0u8; 64];
    gz[..2].copy_from_slice(&[0x1f, 0x8b]);
    s.add("arm64_image", "synthetic-gzip", cat(&[&sizes, &gz]), SRC);
    // gzip'd kernels: a small Image, and an empty member.
    let body: Vec<u8> = (0..8192u32)
        .map(|i| (i % 251) as u8 ^ img[(i % 64) as usize])
        .collect();
    s.add(
        "gzip",
        "synthetic-image",
        super::kernels::gzip(&cat(&[&img, &body])),
        SRC,
    );
    s.add("gzip", "synthetic-empty", super::kernels::gzip(&[]), SRC);
    let mut zboot = vec![0u8; 64];
    zboot[4..8].copy_from_slice(b"zimg");
    s.add(
        "arm64_image",
        "synthetic-zboot",
        cat(&[&sizes, &zboot]),
        SRC,
    );
    // A 6.12-like bzImage setup header: le64 floor, le64 kernel size, setup.
    let mut setup = vec![0u8; 0x1000];
    setup[0x1f1] = 7;
    setup[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    setup[0x200..0x202].copy_from_slice(&[0xeb, 0x6a]);
    setup[0x202..0x206].copy_from_slice(b"HdrS");
    setup[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    setup[0x211] = 1;
    setup[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    setup[0x230..0x234].copy_from_slice(&0x20_0000u32.to_le_bytes());
    setup[0x234] = 1;
    setup[0x236..0x238].copy_from_slice(&3u16.to_le_bytes());
    setup[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes());
    setup[0x258..0x260].copy_from_slice(&0x100_0000u64.to_le_bytes());
    setup[0x260..0x264].copy_from_slice(&0x300_0000u32.to_le_bytes());
    let bz_sizes = cat(&[&0x40_0000u64.to_le_bytes(), &0x100_0000u64.to_le_bytes()]);
    s.add("bzimage", "synthetic-setup", cat(&[&bz_sizes, &setup]), SRC);
    // fw_cfg directory of two files.
    let mut dir = 2u32.to_be_bytes().to_vec();
    for (name, key, size) in [
        ("etc/e820", 0x20u16, 40u32),
        ("opt/org.hotstub/enabled-cpus", 0x21, 3),
    ] {
        let mut ent = [0u8; 64];
        ent[..4].copy_from_slice(&size.to_be_bytes());
        ent[4..6].copy_from_slice(&key.to_be_bytes());
        ent[8..8 + name.len()].copy_from_slice(name.as_bytes());
        dir.extend_from_slice(&ent);
    }
    s.add("fw_cfg_dir", "synthetic-two-files", dir, SRC);
    ch_tables(s);
    pvh_start_info(s);
}

/// cloud-hypervisor's x86 tables as its PVH firmware finds them (the
/// captures the host tests use, firmware/acpi/adopt/ch-x86_64): RSDP at
/// 0xa0000, then DSDT, FACP, APIC, MCFG and XSDT back to back.
fn ch_tables(s: &mut Seeds) {
    let dir = crate::util::root().join("firmware/acpi/adopt/ch-x86_64");
    let mut image = vec![0u8, 0];
    for t in ["RSDP", "DSDT", "FACP", "APIC", "MCFG", "XSDT"] {
        match std::fs::read(dir.join(format!("{t}.dat"))) {
            Ok(b) => image.extend_from_slice(&b),
            Err(e) => {
                s.notes.push(format!("no CH table seed: {t}: {e}"));
                return;
            }
        }
    }
    s.add("acpi_adopt", "ch-x86_64-boot2max4", image, "captured");
}

/// A PVH start info as cloud-hypervisor lays it out (observed with a probe
/// firmware): header at 0x6000 (magic, version 1, command line 0x6100
/// here, RSDP 0xa0000, memory map at 0x7000 with three entries).
fn pvh_start_info(s: &mut Seeds) {
    let mut m = vec![0u8; 0x7000 + 3 * 24];
    let h = 0x6000;
    m[h..h + 4].copy_from_slice(&0x336e_c578u32.to_le_bytes());
    m[h + 4..h + 8].copy_from_slice(&1u32.to_le_bytes());
    m[h + 24..h + 32].copy_from_slice(&0x6100u64.to_le_bytes());
    m[h + 32..h + 40].copy_from_slice(&0xa_0000u64.to_le_bytes());
    m[h + 40..h + 48].copy_from_slice(&0x7000u64.to_le_bytes());
    m[h + 48..h + 52].copy_from_slice(&3u32.to_le_bytes());
    m[0x6100..0x6100 + 14].copy_from_slice(b"console=ttyS0\0");
    for (i, (a, l, t)) in [
        (0u64, 0xa_0000u64, 1u32),
        (0x10_0000, 0x1ff0_0000, 1),
        (0xe800_0000, 0x1000_0000, 2),
    ]
    .into_iter()
    .enumerate()
    {
        let e = 0x7000 + i * 24;
        m[e..e + 8].copy_from_slice(&a.to_le_bytes());
        m[e + 8..e + 16].copy_from_slice(&l.to_le_bytes());
        m[e + 16..e + 20].copy_from_slice(&t.to_le_bytes());
    }
    s.add("pvh_start_info", "ch-layout", m, "synthetic");
}

/// The TPM's answers as swtpm (through QEMU's tpm-tis) gives them to the
/// measured boot, and QEMU's own when its swtpm is gone (a TPM 1.2 style
/// header, tag 0x00c4, TPM_FAIL), byte for byte as the measured-boot
/// cases saw them; big-endian (TPM 2.0 Part 1, 18).
fn tpm_responses(s: &mut Seeds) {
    const SRC: &str = "swtpm answers";
    let mut caps = vec![0u8, 0, 0, 0, 5, 0, 0, 0, 4];
    for alg in [0x04u8, 0x0b, 0x0c, 0x0d] {
        caps.extend_from_slice(&[0, alg, 3, 0xff, 0xff, 0xff]);
    }
    let resp = |tag: u16, rc: u32, params: &[u8]| {
        let mut r = tag.to_be_bytes().to_vec();
        r.extend_from_slice(&((10 + params.len()) as u32).to_be_bytes());
        r.extend_from_slice(&rc.to_be_bytes());
        r.extend_from_slice(params);
        r
    };
    for (name, r) in [
        ("startup-ok", resp(0x8001, 0, &[])),
        ("startup-initialize", resp(0x8001, 0x100, &[])),
        ("qemu-backend-gone", resp(0x00c4, 9, &[])),
        ("pcrs-four-banks", resp(0x8001, 0, &caps)),
        ("extend-ok", resp(0x8002, 0, &[0, 0, 0, 0, 0, 0, 1, 0, 0])),
        ("extend-locality", resp(0x8001, 0x907, &[])),
    ] {
        s.add("tpm_response", name, r, SRC);
    }
}
