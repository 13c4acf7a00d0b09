//! Allocates until the memory limit says no.

fn main() {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![7u8; 4 << 20]);
        std::hint::black_box(&hoard);
    }
}
