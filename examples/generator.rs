//! Generator: a green thread produces values on demand through an
//! unbuffered channel; the consumer takes as many as it wants and drops the
//! receiver, which makes the generator's next send fail so it exits.

use grove::chan;

fn fibonacci() -> chan::Receiver<u64> {
    let (tx, rx) = chan::bounded(0);
    grove::go(move || {
        let (mut a, mut b) = (0u64, 1u64);
        // send fails once the consumer has dropped its receiver
        while tx.send(a).is_ok() {
            (a, b) = (b, a + b);
        }
    });
    rx
}

fn main() {
    let first: Vec<u64> = grove::run(|| fibonacci().iter().take(10).collect());
    println!("first ten Fibonacci numbers: {first:?}");
    assert_eq!(first, [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);
}
