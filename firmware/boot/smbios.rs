//! SMBIOS pass-through: QEMU builds the structures (`etc/smbios/smbios-tables`)
//! and an entry point (`etc/smbios/smbios-anchor`) whose table address the
//! firmware fills in once it has placed the structures (QEMU
//! hw/smbios/smbios.c; DMTF DSP0134 3.7, 5.2).

use core::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Neither "_SM_" (2.1, 32-bit) nor "_SM3_" (3.0, 64-bit).
    UnknownAnchor,
    /// The anchor is shorter than its own length field says.
    Truncated,
    /// A 32-bit entry point cannot address the structures.
    AddressTooHigh(u64),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::UnknownAnchor => f.write_str("SMBIOS entry point has an unknown anchor"),
            Error::Truncated => f.write_str("SMBIOS entry point is truncated"),
            Error::AddressTooHigh(a) => write!(
                f,
                "SMBIOS tables at {a:#x} are beyond a 32-bit entry point's reach"
            ),
        }
    }
}

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)))
}

/// Points the entry point at `table_addr` and fixes its checksums.
pub fn patch_anchor(anchor: &mut [u8], table_addr: u64) -> Result<(), Error> {
    if anchor.starts_with(b"_SM3_") {
        // 64-bit entry point (DSP0134 table 2): length at 0x06, checksum at
        // 0x05 over the whole structure, table address at 0x10.
        let len = *anchor.get(6).ok_or(Error::Truncated)? as usize;
        if len < 0x18 || anchor.len() < len {
            return Err(Error::Truncated);
        }
        anchor[0x10..0x18].copy_from_slice(&table_addr.to_le_bytes());
        anchor[5] = 0;
        anchor[5] = checksum(&anchor[..len]);
        Ok(())
    } else if anchor.starts_with(b"_SM_") {
        // 32-bit entry point (DSP0134 table 1): length at 0x05, checksum at
        // 0x04; intermediate "_DMI_" part 0x10..0x1f with its checksum at
        // 0x15 and the table address at 0x18.
        let len = *anchor.get(5).ok_or(Error::Truncated)? as usize;
        if len < 0x1f || anchor.len() < len {
            return Err(Error::Truncated);
        }
        let addr = u32::try_from(table_addr).map_err(|_| Error::AddressTooHigh(table_addr))?;
        anchor[0x18..0x1c].copy_from_slice(&addr.to_le_bytes());
        anchor[0x15] = 0;
        anchor[0x15] = checksum(&anchor[0x10..0x1f]);
        anchor[4] = 0;
        anchor[4] = checksum(&anchor[..len]);
        Ok(())
    } else {
        Err(Error::UnknownAnchor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, x| a.wrapping_add(*x))
    }

    #[test]
    fn patches_64bit_anchor() {
        let mut a = [0u8; 24];
        a[..5].copy_from_slice(b"_SM3_");
        a[6] = 24;
        patch_anchor(&mut a, 0x1234_5678_9abc).unwrap();
        assert_eq!(
            u64::from_le_bytes(a[0x10..0x18].try_into().unwrap()),
            0x1234_5678_9abc
        );
        assert_eq!(sum(&a), 0);
    }

    #[test]
    fn patches_32bit_anchor() {
        let mut a = [0u8; 31];
        a[..4].copy_from_slice(b"_SM_");
        a[5] = 31;
        a[0x10..0x15].copy_from_slice(b"_DMI_");
        patch_anchor(&mut a, 0xf_1000).unwrap();
        assert_eq!(
            u32::from_le_bytes(a[0x18..0x1c].try_into().unwrap()),
            0xf_1000
        );
        assert_eq!(sum(&a), 0);
        assert_eq!(sum(&a[0x10..0x1f]), 0);
        assert_eq!(
            patch_anchor(&mut a, 1 << 32),
            Err(Error::AddressTooHigh(1 << 32))
        );
    }

    #[test]
    fn rejects_bad_anchors() {
        assert_eq!(patch_anchor(&mut [0u8; 24], 0), Err(Error::UnknownAnchor));
        let mut a = *b"_SM3_\0\x40";
        assert_eq!(patch_anchor(&mut a, 0), Err(Error::Truncated));
        let mut a = *b"_SM_";
        assert_eq!(patch_anchor(&mut a, 0), Err(Error::Truncated));
    }
}
