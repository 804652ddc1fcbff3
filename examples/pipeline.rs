//! Pipeline: stages connected by channels, each stage a green thread. Closing
//! flows downstream: when a stage's input is drained, it drops its output
//! sender, which ends the next stage's `for v in &rx` loop.

use grove::chan::{self, Receiver};

fn generate(n: u64) -> Receiver<u64> {
    let (tx, rx) = chan::bounded(16);
    grove::go(move || {
        for i in 1..=n {
            tx.send(i).unwrap();
        }
    });
    rx
}

fn square(input: Receiver<u64>) -> Receiver<u64> {
    let (tx, rx) = chan::bounded(16);
    grove::go(move || {
        for v in &input {
            tx.send(v * v).unwrap();
        }
    });
    rx
}

fn main() {
    let total = grove::run(|| square(square(generate(100))).iter().sum::<u64>());
    let expected: u64 = (1..=100u64).map(|i| i.pow(4)).sum();
    println!("sum of i^4 for i in 1..=100: {total}");
    assert_eq!(total, expected);
}
