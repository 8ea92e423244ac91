//! Finding out what machine this is: the VMM's fw_cfg interface, the
//! device tree, the memory map and the possible vCPUs with their policy.

pub mod cpulist;
pub mod cpus;
pub mod dt;
pub mod fw_cfg;
pub mod memmap;
pub mod x86_board;

/// Sorts the few ranges a memory map has (a handful of entries). An
/// insertion sort because core's `sort`/`sort_unstable` instantiate about
/// 3 KiB of code per element type, a tenth of the space the aarch64 image
/// has left, for lists that never grow past a few dozen entries.
pub fn sort_small<T: Ord + Copy>(v: &mut [T]) {
    for i in 1..v.len() {
        let x = v[i];
        let mut j = i;
        while j > 0 && v[j - 1] > x {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
    }
}

/// Sorts many plain keys (vCPU UIDs and hardware IDs, up to q35's 4,096
/// vCPUs) in O(n log n) without core's `sort_unstable`: a heapsort is a
/// few hundred bytes where core's sort instantiates about 3 KiB per
/// element type.
pub fn sort_keys(v: &mut [u64]) {
    // The vCPUs' keys come in order: 35,000 guest instructions of
    // heapsort for two lists at 64 vCPUs, one look without.
    if v.windows(2).all(|w| w[0] <= w[1]) {
        return;
    }
    // Sift `v[root]` down the max-heap `v[..end]`.
    fn sift(v: &mut [u64], mut root: usize, end: usize) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end && v[child] < v[child + 1] {
                child += 1;
            }
            if v[root] >= v[child] {
                return;
            }
            v.swap(root, child);
            root = child;
        }
    }
    for i in (0..v.len() / 2).rev() {
        sift(v, i, v.len());
    }
    for end in (1..v.len()).rev() {
        v.swap(0, end);
        sift(v, 0, end);
    }
}

/// [`sort_small`] by a comparison, for elements that are not `Copy` (the
/// disk's file names and BLS entries, at most `disk::volume::MAX_DIR`):
/// stable, by swaps.
pub fn sort_small_by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> core::cmp::Ordering) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && cmp(&v[j - 1], &v[j]).is_gt() {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sort_small_matches_core_sort() {
        let mut seed = 0x9e37_79b9u32;
        for len in 0..40 {
            let mut v: alloc::vec::Vec<(u8, u8)> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    ((seed % 7) as u8, (seed >> 8) as u8 % 3)
                })
                .collect();
            let mut want = v.clone();
            want.sort();
            let mut by_first = v.clone();
            super::sort_small(&mut v);
            assert_eq!(v, want);
            // Stable: equal first halves keep their order.
            let mut stable = by_first.clone();
            stable.sort_by_key(|p| p.0);
            super::sort_small_by(&mut by_first, |a, b| a.0.cmp(&b.0));
            assert_eq!(by_first, stable);
            let mut keys: alloc::vec::Vec<u64> = want.iter().map(|p| u64::from(p.1)).collect();
            let mut keys_want = keys.clone();
            keys_want.sort_unstable();
            super::sort_keys(&mut keys);
            assert_eq!(keys, keys_want);
        }
    }
}
