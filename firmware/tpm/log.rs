//! The TCG event log in the crypto-agile format (TCG PC Client Platform
//! Firmware Profile 2.0, 10.2): a TCG_PCR_EVENT header carrying the
//! EV_NO_ACTION "Spec ID Event03" that lists the banks, then one
//! TCG_PCR_EVENT2 per measurement with a digest per bank. Little-endian
//! throughout (the spec's structures are the platform's byte order).
//! Linux reads it from the TPM2 table's LASA up to the first record that
//! does not parse, so the area past the last record stays zero.

use super::{Alg, Digest};

/// Event types (Firmware Profile 10.4.1).
pub const EV_POST_CODE: u32 = 0x1;
pub const EV_NO_ACTION: u32 = 0x3;
pub const EV_SEPARATOR: u32 = 0x4;
pub const EV_S_CRTM_VERSION: u32 = 0x8;
pub const EV_PLATFORM_CONFIG_FLAGS: u32 = 0xa;
pub const EV_IPL: u32 = 0xd;

/// TCG_EfiSpecIDEvent's signature, NUL included (Firmware Profile
/// 10.4.5.1).
const SPEC_ID: &[u8; 16] = b"Spec ID Event03\0";

/// The log does not fit its area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

impl core::fmt::Display for Full {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        f.write_str("the event log area is full")
    }
}

/// A log being written into its area.
pub struct Log<'a> {
    area: &'a mut [u8],
    used: usize,
}

impl<'a> Log<'a> {
    /// Starts a log in `area` (zeroed first) for these banks, with the
    /// Spec ID event as its header.
    pub fn new(area: &'a mut [u8], banks: &[Alg]) -> Result<Log<'a>, Full> {
        area.fill(0);
        let mut log = Log { area, used: 0 };
        // TCG_EfiSpecIdEvent (10.4.5.1): platform class 0 (client),
        // spec version 2.0 errata 0, UINTN of 8 bytes (uintnSize 2), the
        // banks with their digest sizes, no vendor data.
        let spec_len = 16 + 4 + 4 + 4 + banks.len() * 4 + 1;
        let mut head = [0u8; 32];
        head[4..8].copy_from_slice(&EV_NO_ACTION.to_le_bytes());
        // PCR 0, a 20-byte zero digest (the SHA-1 format's), the size.
        head[28..32].copy_from_slice(&(spec_len as u32).to_le_bytes());
        log.put(&head)?;
        log.put(SPEC_ID)?;
        log.put(&0u32.to_le_bytes())?;
        log.put(&[0, 2, 0, 2])?;
        log.put(&(banks.len() as u32).to_le_bytes())?;
        for b in banks {
            log.put(&b.id().to_le_bytes())?;
            log.put(&(b.size() as u16).to_le_bytes())?;
        }
        log.put(&[0])?;
        Ok(log)
    }

    /// Appends a TCG_PCR_EVENT2 (10.2.2): PCR, type, TPML_DIGEST_VALUES
    /// (count, then algorithm ID and digest each), event size and data.
    /// A record that does not fit is not written at all.
    pub fn append(
        &mut self,
        pcr: u32,
        ty: u32,
        digests: &[Digest],
        data: &[u8],
    ) -> Result<(), Full> {
        let size = 12 + digests.iter().map(|d| 2 + d.bytes().len()).sum::<usize>() + 4 + data.len();
        if self.area.len() - self.used < size {
            return Err(Full);
        }
        self.put(&pcr.to_le_bytes())?;
        self.put(&ty.to_le_bytes())?;
        self.put(&(digests.len() as u32).to_le_bytes())?;
        for d in digests {
            self.put(&d.alg.id().to_le_bytes())?;
            self.put(d.bytes())?;
        }
        self.put(&(data.len() as u32).to_le_bytes())?;
        self.put(data)
    }

    /// Bytes written so far.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Empties the area: Linux then finds no log (no Spec ID event).
    pub fn clear(self) {
        self.area.fill(0);
    }

    fn put(&mut self, b: &[u8]) -> Result<(), Full> {
        let dst = self
            .area
            .get_mut(self.used..self.used + b.len())
            .ok_or(Full)?;
        dst.copy_from_slice(b);
        self.used += b.len();
        Ok(())
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::tpm::MAX_DIGEST;
    use std::vec::Vec;

    /// A log replayed: each bank's PCR 0-23 as extending every record's
    /// digest from zero gives them. Parses what `Log` writes, the way a
    /// verifier does (tpm2_eventlog, Linux's tpm2 log reader): the Spec ID
    /// event names the banks and sizes, records run until one does not
    /// parse or has PCR and type zero and no digests.
    pub fn replay(log: &[u8]) -> Vec<(Alg, [[u8; MAX_DIGEST]; 24])> {
        let u32_at = |o: usize| u32::from_le_bytes(log[o..o + 4].try_into().unwrap());
        let u16_at = |o: usize| u16::from_le_bytes(log[o..o + 2].try_into().unwrap());
        assert_eq!(u32_at(4), EV_NO_ACTION);
        let spec = 32;
        assert_eq!(&log[spec..spec + 16], SPEC_ID);
        let n = u32_at(spec + 24) as usize;
        let mut banks: Vec<(Alg, [[u8; MAX_DIGEST]; 24])> = (0..n)
            .map(|i| {
                let alg = Alg::from_id(u16_at(spec + 28 + 4 * i)).unwrap();
                assert_eq!(usize::from(u16_at(spec + 30 + 4 * i)), alg.size());
                (alg, [[0u8; MAX_DIGEST]; 24])
            })
            .collect();
        let mut o = spec + u32_at(28) as usize;
        while o + 12 <= log.len() {
            let (pcr, ty, count) = (u32_at(o) as usize, u32_at(o + 4), u32_at(o + 8));
            if count == 0 {
                break;
            }
            let mut p = o + 12;
            for _ in 0..count {
                let alg = Alg::from_id(u16_at(p)).unwrap();
                let d = &log[p + 2..p + 2 + alg.size()];
                let bank = banks.iter_mut().find(|b| b.0 == alg).unwrap();
                if ty != EV_NO_ACTION {
                    let v = alg.extend(&bank.1[pcr][..alg.size()], d);
                    bank.1[pcr][..alg.size()].copy_from_slice(v.bytes());
                }
                p += 2 + alg.size();
            }
            o = p + 4 + u32_at(p) as usize;
        }
        banks
    }

    #[test]
    fn replay_of_the_written_log_is_the_extend_arithmetic() {
        let banks = [Alg::Sha1, Alg::Sha256, Alg::Sha384, Alg::Sha512];
        let mut area = std::vec![0xeeu8; 4096];
        let mut log = Log::new(&mut area, &banks).unwrap();
        let events: [(u32, &[u8]); 4] = [(0, b"fw"), (8, b"cmdline"), (9, b"kernel"), (8, b"x")];
        for (pcr, data) in events {
            let d: Vec<Digest> = banks.iter().map(|a| a.hash(&[data])).collect();
            log.append(pcr, EV_IPL, &d, data).unwrap();
        }
        let used = log.used();
        // Header: 32 + Spec ID of 16+4+4+4+4*4+1.
        assert_eq!(
            used,
            32 + 45 + 4 * (12 + 22 + 34 + 50 + 66 + 4) + 2 + 7 + 6 + 1
        );
        assert!(area[used..].iter().all(|&b| b == 0), "the rest is zero");
        let r = replay(&area);
        for (alg, pcrs) in &r {
            let z = [0u8; MAX_DIGEST];
            let n = alg.size();
            let step = |pcr: &[u8], data: &[u8]| {
                alg.extend(pcr, alg.hash(&[data]).bytes()).bytes().to_vec()
            };
            assert_eq!(&pcrs[0][..n], &step(&z[..n], b"fw")[..]);
            let p8 = step(&step(&z[..n], b"cmdline"), b"x");
            assert_eq!(&pcrs[8][..n], &p8[..]);
            assert_eq!(&pcrs[1][..n], &z[..n], "untouched PCRs stay zero");
        }
        assert_eq!(r.len(), 4);
    }

    #[test]
    fn a_record_that_does_not_fit_is_refused_whole() {
        let mut area = std::vec![0u8; 110];
        let mut log = Log::new(&mut area, &[Alg::Sha256]).unwrap();
        assert_eq!(log.used(), 32 + 16 + 12 + 4 + 1);
        let d = [Alg::Sha256.hash(&[b"a"])];
        assert_eq!(log.append(0, EV_IPL, &d, b"a"), Err(Full));
        let used = log.used();
        assert!(area[used..].iter().all(|&b| b == 0));
        let mut tiny = [0u8; 40];
        assert!(Log::new(&mut tiny, &[Alg::Sha256]).is_err());
    }
}
