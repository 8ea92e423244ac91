//! Measured boot: a TPM 2.0 reached through its TIS registers, the boot's
//! measurements extended into its PCRs, and the TCG event log that
//! replays to them, which Linux finds through the TPM2 ACPI table. The
//! codec (`cmd`), the log writer (`log`), the TIS protocol (`tis`, over a
//! register trait) and the measuring policy (`measure`) are pure; the
//! MMIO accessors are the binary's.

pub mod cmd;
pub mod log;
pub mod measure;
pub mod tis;

use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};

/// The event log area handed to Linux (the TPM2 table's LAML). A boot
/// logs about a dozen events of under 400 bytes each with four banks;
/// QEMU's own firmwares get 64 KiB (hw/tpm/tpm_ppi.h
/// TPM_LOG_AREA_MINIMUM_SIZE), which the arm ACPI area cannot spare.
pub const LOG_SIZE: usize = 16 << 10;

/// The hash algorithms a PCR bank can use that this firmware computes
/// (TCG Algorithm Registry: TPM_ALG_SHA1 4, SHA256 0x0b, SHA384 0x0c,
/// SHA512 0x0d).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// The largest digest (SHA-512).
pub const MAX_DIGEST: usize = 64;

/// One bank's digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest {
    pub alg: Alg,
    bytes: [u8; MAX_DIGEST],
}

impl Digest {
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.alg.size()]
    }
}

impl Alg {
    pub fn id(self) -> u16 {
        match self {
            Alg::Sha1 => 0x04,
            Alg::Sha256 => 0x0b,
            Alg::Sha384 => 0x0c,
            Alg::Sha512 => 0x0d,
        }
    }

    pub fn from_id(id: u16) -> Option<Alg> {
        [Alg::Sha1, Alg::Sha256, Alg::Sha384, Alg::Sha512]
            .into_iter()
            .find(|a| a.id() == id)
    }

    /// The name tpm2-tools and Linux's sysfs give the bank.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Sha1 => "sha1",
            Alg::Sha256 => "sha256",
            Alg::Sha384 => "sha384",
            Alg::Sha512 => "sha512",
        }
    }

    /// Digest size in bytes.
    pub fn size(self) -> usize {
        match self {
            Alg::Sha1 => 20,
            Alg::Sha256 => 32,
            Alg::Sha384 => 48,
            Alg::Sha512 => 64,
        }
    }

    /// The digest of `parts` in sequence.
    pub fn hash(self, parts: &[&[u8]]) -> Digest {
        fn run<H: sha2::Digest>(parts: &[&[u8]], out: &mut [u8]) {
            let mut h = H::new();
            for p in parts {
                h.update(p);
            }
            out.copy_from_slice(&h.finalize());
        }
        let mut bytes = [0u8; MAX_DIGEST];
        let out = &mut bytes[..self.size()];
        match self {
            Alg::Sha1 => run::<Sha1>(parts, out),
            Alg::Sha256 => run::<Sha256>(parts, out),
            Alg::Sha384 => run::<Sha384>(parts, out),
            Alg::Sha512 => run::<Sha512>(parts, out),
        }
        Digest { alg: self, bytes }
    }

    /// A PCR extended with `digest`: H(pcr || digest) (TPM 2.0 Part 1,
    /// 17.2), what replaying a log computes.
    pub fn extend(self, pcr: &[u8], digest: &[u8]) -> Digest {
        self.hash(&[pcr, digest])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_the_standard_vectors() {
        // FIPS 180 "abc" vectors, first and last bytes.
        let abc: &[&[u8]] = &[b"a", b"bc"];
        let d = Alg::Sha256.hash(abc);
        assert_eq!(d.bytes().len(), 32);
        assert_eq!(&d.bytes()[..4], &[0xba, 0x78, 0x16, 0xbf]);
        assert_eq!(&Alg::Sha1.hash(abc).bytes()[..4], &[0xa9, 0x99, 0x3e, 0x36]);
        assert_eq!(
            &Alg::Sha384.hash(abc).bytes()[..4],
            &[0xcb, 0x00, 0x75, 0x3f]
        );
        assert_eq!(
            &Alg::Sha512.hash(abc).bytes()[60..],
            &[0xa5, 0x4c, 0xa4, 0x9f]
        );
        for a in [Alg::Sha1, Alg::Sha256, Alg::Sha384, Alg::Sha512] {
            assert_eq!(Alg::from_id(a.id()), Some(a));
            assert_eq!(a.hash(&[]).bytes().len(), a.size());
        }
        assert_eq!(Alg::from_id(0x12), None);
    }
}
