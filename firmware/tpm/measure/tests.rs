use super::*;
use crate::tpm::log::tests::replay;
use crate::tpm::tis::tests::Model;
use crate::tpm::MAX_DIGEST;
use std::vec;

/// A TPM with the SHA-1 and SHA-256 banks active (swtpm's default
/// allocation has more; two keep the test small) that accepts everything.
fn tpm(c: &[u8]) -> Vec<u8> {
    let cc = u32::from_be_bytes(c[6..10].try_into().unwrap());
    let mut r = match cc {
        0x17a => {
            let mut p = vec![0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 2];
            p.extend_from_slice(&[0, 4, 3, 0xff, 0xff, 0xff, 0, 0x0b, 3, 0xff, 0xff, 0xff]);
            p
        }
        0x182 => vec![0x80, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 1, 0, 0],
        _ => vec![0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0],
    };
    let n = r.len() as u32;
    r[2..6].copy_from_slice(&n.to_be_bytes());
    r
}

/// The PCRs the TPM model ends with: every PCR_Extend it received,
/// applied (TPM 2.0 Part 1, 17.2).
fn pcrs_from_commands(cmds: &[Vec<u8>]) -> Vec<(Alg, [[u8; MAX_DIGEST]; 24])> {
    let mut banks = vec![
        (Alg::Sha1, [[0u8; MAX_DIGEST]; 24]),
        (Alg::Sha256, [[0u8; MAX_DIGEST]; 24]),
    ];
    for c in cmds.iter().filter(|c| c[6..10] == [0, 0, 1, 0x82]) {
        let pcr = u32::from_be_bytes(c[10..14].try_into().unwrap()) as usize;
        let mut o = 31;
        for _ in 0..u32::from_be_bytes(c[27..31].try_into().unwrap()) {
            let alg = Alg::from_id(u16::from_be_bytes([c[o], c[o + 1]])).unwrap();
            let d = &c[o + 2..o + 2 + alg.size()];
            let bank = &mut banks.iter_mut().find(|b| b.0 == alg).unwrap().1[pcr];
            let v = alg.extend(&bank[..alg.size()], d);
            bank[..alg.size()].copy_from_slice(v.bytes());
            o += 2 + alg.size();
        }
    }
    banks
}

fn boot(m: &mut Measure<'_, Model>, cmdline: &[u8], initrd: &[u8]) {
    m.firmware("Hotstub 0.1.0", &[b"image", b"bytes"]);
    m.config("opt/org.hotstub/enabled-cpus", b"0-1");
    m.tables(&[b"RSDP...", b"XSDT..."]);
    m.separators();
    m.cmdline(cmdline);
    m.file("kernel", &[b"setup", b"kernel"]);
    m.file("initrd", &[initrd]);
}

#[test]
fn the_log_replays_to_the_pcrs_the_tpm_holds() {
    let mut area = vec![0u8; 4096];
    let mut m = Measure::start(Model::new(tpm), &mut area);
    assert!(m.is_on());
    boot(&mut m, b"console=ttyS0", b"initrd");
    let on = m.on.as_ref().unwrap();
    let pcrs = pcrs_from_commands(&on.tis.regs().commands);
    assert!(m.finish());
    assert_eq!(replay(&area), pcrs);
    // Startup, GetCapability, 2 + 1 + 1 + 8 + 1 + 2 extends.
    let pcr8 = |cmdline: &[u8], initrd: &[u8]| {
        let mut area = vec![0u8; 4096];
        let mut m = Measure::start(Model::new(tpm), &mut area);
        boot(&mut m, cmdline, initrd);
        m.finish();
        replay(&area)
    };
    let (a, b, c) = (
        pcr8(b"console=ttyS0", b"initrd"),
        pcr8(b"console=ttyS1", b"initrd"),
        pcr8(b"console=ttyS0", b"initrD"),
    );
    for bank in 0..2 {
        for pcr in 0..24 {
            assert_eq!(
                a[bank].1[pcr] != b[bank].1[pcr],
                pcr == 8,
                "cmdline, PCR {pcr}"
            );
            assert_eq!(
                a[bank].1[pcr] != c[bank].1[pcr],
                pcr == 9,
                "initrd, PCR {pcr}"
            );
        }
    }
    // The separators: PCRs 2-7 hold exactly one extend of H(0u32).
    let sha256 = Alg::Sha256;
    let sep = sha256.extend(&[0; 32], sha256.hash(&[&[0; 4]]).bytes());
    assert_eq!(&a[1].1[5][..32], sep.bytes());
}

#[test]
fn a_failing_tpm_turns_measuring_off_and_clears_the_log() {
    fn fails_extend(c: &[u8]) -> Vec<u8> {
        if c[6..10] == [0, 0, 1, 0x82] {
            // TPM_RC_FAILURE, as QEMU answers once swtpm is gone.
            vec![0x80, 1, 0, 0, 0, 10, 0, 0, 1, 1]
        } else {
            tpm(c)
        }
    }
    let mut area = vec![0u8; 4096];
    let mut m = Measure::start(Model::new(fails_extend), &mut area);
    assert!(m.is_on());
    boot(&mut m, b"x", b"y");
    assert!(!m.is_on());
    assert!(!m.finish());
    assert!(area.iter().all(|&b| b == 0), "no partial log for Linux");

    fn fails_startup(_: &[u8]) -> Vec<u8> {
        vec![0x80, 1, 0, 0, 0, 10, 0, 0, 1, 1]
    }
    let mut area = vec![0u8; 4096];
    let m = Measure::start(Model::new(fails_startup), &mut area);
    assert!(!m.is_on());
    let mut absent = Model::new(tpm);
    absent.absent = true;
    assert!(!Measure::start(absent, &mut area).is_on());
    // An already started TPM (TPM_RC_INITIALIZE) is used as it is.
    fn started(c: &[u8]) -> Vec<u8> {
        if c[6..10] == [0, 0, 1, 0x44] {
            vec![0x80, 1, 0, 0, 0, 10, 0, 0, 1, 0]
        } else {
            tpm(c)
        }
    }
    assert!(Measure::start(Model::new(started), &mut area).is_on());
}
