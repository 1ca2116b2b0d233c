use cga::kernel::*;
use std::time::Instant;
fn main() {
    for len in [187usize - 16, 319 - 16] {
        let tail = vec![7u8; len];
        let n = 2_000_000u64;
        let t = Instant::now();
        let mut x = 0u8;
        for i in 0..n { x ^= reference_digest(i as u128, &tail)[0]; }
        let r = n as f64 / t.elapsed().as_secs_f64();
        println!("len {} reference {:.2} M/s ({x})", len + 16, r / 1e6);
        let mut ks = vec![Kernel::portable()];
        ks.extend(Kernel::SHA_NI_LANES.iter().filter_map(|&l| Kernel::sha_ni(l)));
        for k in ks {
            let h = ModifierHasher::new(&tail, k);
            let t = Instant::now();
            let f = h.find(0, n, 0xffff_0000, 1);
            let s = n as f64 / t.elapsed().as_secs_f64();
            println!("  {k}: {:.2} M/s  ratio {:.2} {f:?}", s / 1e6, s / r);
        }
    }
}
