//! Property tests: random sequences of non-blocking channel operations,
//! checked step by step against a reference model of Go's channel rules,
//! for every flavour; and `Select::try_select` over 2–4 channels against
//! the same model.
//!
//! The model (`Model`) is a `VecDeque` plus Go's rules: a bounded channel
//! holds at most `cap` values (`bounded(0)` none: with no receiver waiting,
//! and in one thread there never is, a send cannot complete); closing makes
//! sends fail with the value handed back while buffered values are still
//! received, then receives fail; the last sender's drop closes; the last
//! receiver's drop makes sends fail and drops what was buffered.
//!
//! Every value is a `Token` counted while alive, so the tests also check
//! that the channel never leaks, duplicates or drops a value it should
//! keep. Cases default to 256 per property (`PROPTEST_CASES` overrides);
//! failures are not persisted to files.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use grove::chan::{
    self, Receiver, RecvError, RecvTimeoutError, Select, SendError, SendTimeoutError, Sender,
    TryRecvError, TrySendError,
};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A channel value that counts how many of its kind are alive.
#[derive(Debug)]
struct Token {
    id: u32,
    alive: Arc<AtomicIsize>,
}

impl Token {
    fn new(id: u32, alive: &Arc<AtomicIsize>) -> Token {
        alive.fetch_add(1, Ordering::SeqCst);
        Token {
            id,
            alive: alive.clone(),
        }
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone, Copy, Debug)]
enum Flavor {
    Bounded(usize),
    Unbounded,
}

impl Flavor {
    fn make(self) -> (Sender<Token>, Receiver<Token>) {
        match self {
            Flavor::Bounded(cap) => chan::bounded(cap),
            Flavor::Unbounded => chan::unbounded(),
        }
    }

    fn cap(self) -> Option<usize> {
        match self {
            Flavor::Bounded(cap) => Some(cap),
            Flavor::Unbounded => None,
        }
    }
}

fn flavor() -> impl Strategy<Value = Flavor> {
    prop_oneof![
        Just(Flavor::Bounded(0)),
        Just(Flavor::Bounded(1)),
        Just(Flavor::Bounded(4)),
        Just(Flavor::Bounded(64)),
        Just(Flavor::Unbounded),
    ]
}

/// Go's channel, as a reference.
#[derive(Debug)]
struct Model {
    cap: Option<usize>,
    buf: VecDeque<u32>,
    closed: bool,
    senders: usize,
    receivers: usize,
}

/// What a send does in the model.
#[derive(Debug, PartialEq)]
enum SendOutcome {
    Sent,
    Full,
    Disconnected,
}

/// What a receive does in the model.
#[derive(Debug, PartialEq)]
enum RecvOutcome {
    Got(u32),
    Empty,
    Disconnected,
}

impl Model {
    fn new(cap: Option<usize>) -> Model {
        Model {
            cap,
            buf: VecDeque::new(),
            closed: false,
            senders: 1,
            receivers: 1,
        }
    }

    fn send_fails(&self) -> bool {
        self.closed || self.receivers == 0
    }

    fn has_room(&self) -> bool {
        self.cap.is_none_or(|cap| self.buf.len() < cap)
    }

    fn send(&mut self, id: u32) -> SendOutcome {
        if self.send_fails() {
            SendOutcome::Disconnected
        } else if self.has_room() {
            self.buf.push_back(id);
            SendOutcome::Sent
        } else {
            SendOutcome::Full
        }
    }

    fn recv(&mut self) -> RecvOutcome {
        match self.buf.pop_front() {
            Some(id) => RecvOutcome::Got(id),
            None if self.closed => RecvOutcome::Disconnected,
            None => RecvOutcome::Empty,
        }
    }

    /// A select arm could complete now (one thread: nobody waits).
    fn send_ready(&self) -> bool {
        self.send_fails() || self.has_room()
    }

    fn recv_ready(&self) -> bool {
        !self.buf.is_empty() || self.closed
    }

    fn close(&mut self) -> bool {
        !std::mem::replace(&mut self.closed, true)
    }

    fn drop_sender(&mut self) {
        self.senders -= 1;
        if self.senders == 0 {
            self.closed = true;
        }
    }

    fn drop_receiver(&mut self) {
        self.receivers -= 1;
        if self.receivers == 0 {
            self.buf.clear(); // nobody can receive them any more
        }
    }
}

fn observed_send(result: Result<(), TrySendError<Token>>, id: u32) -> SendOutcome {
    match result {
        Ok(()) => SendOutcome::Sent,
        Err(TrySendError::Full(t)) => {
            assert_eq!(t.id, id, "Full hands back the value sent");
            SendOutcome::Full
        }
        Err(TrySendError::Disconnected(t)) => {
            assert_eq!(t.id, id, "Disconnected hands back the value sent");
            SendOutcome::Disconnected
        }
    }
}

fn observed_send_timeout(result: Result<(), SendTimeoutError<Token>>, id: u32) -> SendOutcome {
    match result {
        Ok(()) => SendOutcome::Sent,
        Err(SendTimeoutError::Timeout(t)) => {
            assert_eq!(t.id, id);
            SendOutcome::Full
        }
        Err(SendTimeoutError::Disconnected(t)) => {
            assert_eq!(t.id, id);
            SendOutcome::Disconnected
        }
    }
}

fn observed_recv(result: Result<Token, TryRecvError>) -> RecvOutcome {
    match result {
        Ok(t) => RecvOutcome::Got(t.id),
        Err(TryRecvError::Empty) => RecvOutcome::Empty,
        Err(TryRecvError::Disconnected) => RecvOutcome::Disconnected,
    }
}

fn observed_recv_timeout(result: Result<Token, RecvTimeoutError>) -> RecvOutcome {
    match result {
        Ok(t) => RecvOutcome::Got(t.id),
        Err(RecvTimeoutError::Timeout) => RecvOutcome::Empty,
        Err(RecvTimeoutError::Disconnected) => RecvOutcome::Disconnected,
    }
}

// ---------------------------------------------------------------------------
// One channel, random operations.

#[derive(Clone, Debug)]
enum Op {
    TrySend(usize),
    SendTimeoutZero(usize),
    /// `send` only when the model says it will not block.
    SendIfReady(usize),
    TryRecv(usize),
    RecvTimeoutZero(usize),
    /// `recv` only when the model says it will not block.
    RecvIfReady(usize),
    DrainTryIter(usize),
    Close(usize),
    CloneSender(usize),
    DropSender(usize),
    CloneReceiver(usize),
    DropReceiver(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let i = 0..4usize;
    prop_oneof![
        6 => i.clone().prop_map(Op::TrySend),
        2 => i.clone().prop_map(Op::SendTimeoutZero),
        2 => i.clone().prop_map(Op::SendIfReady),
        5 => i.clone().prop_map(Op::TryRecv),
        2 => i.clone().prop_map(Op::RecvTimeoutZero),
        2 => i.clone().prop_map(Op::RecvIfReady),
        1 => i.clone().prop_map(Op::DrainTryIter),
        1 => i.clone().prop_map(Op::Close),
        1 => i.clone().prop_map(Op::CloneSender),
        1 => i.clone().prop_map(Op::DropSender),
        1 => i.clone().prop_map(Op::CloneReceiver),
        1 => i.prop_map(Op::DropReceiver),
    ]
}

/// The channel under test: every live end, and the model.
struct Harness {
    senders: Vec<Sender<Token>>,
    receivers: Vec<Receiver<Token>>,
    model: Model,
    alive: Arc<AtomicIsize>,
    next_id: u32,
}

impl Harness {
    fn new(flavor: Flavor) -> Harness {
        let (tx, rx) = flavor.make();
        Harness {
            senders: vec![tx],
            receivers: vec![rx],
            model: Model::new(flavor.cap()),
            alive: Arc::new(AtomicIsize::new(0)),
            next_id: 0,
        }
    }

    fn token(&mut self) -> Token {
        self.next_id += 1;
        Token::new(self.next_id, &self.alive)
    }

    fn sender(&self, i: usize) -> Option<&Sender<Token>> {
        (!self.senders.is_empty()).then(|| &self.senders[i % self.senders.len()])
    }

    fn receiver(&self, i: usize) -> Option<&Receiver<Token>> {
        (!self.receivers.is_empty()).then(|| &self.receivers[i % self.receivers.len()])
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::TrySend(i) | Op::SendTimeoutZero(i) | Op::SendIfReady(i) => {
                if self.senders.is_empty() {
                    return;
                }
                if matches!(op, Op::SendIfReady(_)) && !self.model.send_ready() {
                    return;
                }
                let token = self.token();
                let id = token.id;
                let tx = self.sender(i).expect("checked");
                let got = match op {
                    Op::TrySend(_) => observed_send(tx.try_send(token), id),
                    Op::SendTimeoutZero(_) => {
                        observed_send_timeout(tx.send_timeout(token, Duration::ZERO), id)
                    }
                    _ => match tx.send(token) {
                        Ok(()) => SendOutcome::Sent,
                        Err(SendError(t)) => {
                            assert_eq!(t.id, id);
                            SendOutcome::Disconnected
                        }
                    },
                };
                assert_eq!(got, self.model.send(id), "{op:?} on {:?}", self.model);
            }
            Op::TryRecv(i) | Op::RecvTimeoutZero(i) | Op::RecvIfReady(i) => {
                let Some(rx) = self.receiver(i) else { return };
                if matches!(op, Op::RecvIfReady(_)) && !self.model.recv_ready() {
                    return;
                }
                let got = match op {
                    Op::TryRecv(_) => observed_recv(rx.try_recv()),
                    Op::RecvTimeoutZero(_) => {
                        observed_recv_timeout(rx.recv_timeout(Duration::ZERO))
                    }
                    _ => match rx.recv() {
                        Ok(t) => RecvOutcome::Got(t.id),
                        Err(RecvError) => RecvOutcome::Disconnected,
                    },
                };
                assert_eq!(got, self.model.recv(), "{op:?}");
            }
            Op::DrainTryIter(i) => {
                let Some(rx) = self.receiver(i) else { return };
                let got: Vec<u32> = rx.try_iter().map(|t| t.id).collect();
                let expected: Vec<u32> = self.model.buf.drain(..).collect();
                assert_eq!(got, expected);
            }
            Op::Close(i) => {
                let Some(tx) = self.sender(i) else { return };
                assert_eq!(tx.close(), self.model.close(), "close() says who closed");
            }
            Op::CloneSender(i) => {
                if let Some(tx) = self.sender(i) {
                    let tx = tx.clone();
                    self.senders.push(tx);
                    self.model.senders += 1;
                }
            }
            Op::DropSender(i) => {
                if !self.senders.is_empty() {
                    let n = self.senders.len();
                    drop(self.senders.swap_remove(i % n));
                    self.model.drop_sender();
                }
            }
            Op::CloneReceiver(i) => {
                if let Some(rx) = self.receiver(i) {
                    let rx = rx.clone();
                    self.receivers.push(rx);
                    self.model.receivers += 1;
                }
            }
            Op::DropReceiver(i) => {
                if !self.receivers.is_empty() {
                    let n = self.receivers.len();
                    drop(self.receivers.swap_remove(i % n));
                    self.model.drop_receiver();
                }
            }
        }
        self.check_observers();
    }

    /// The read-only methods agree with the model after every step, and
    /// exactly the buffered values are alive.
    fn check_observers(&self) {
        let m = &self.model;
        for tx in &self.senders {
            assert_eq!(tx.len(), m.buf.len(), "Sender::len");
            assert_eq!(tx.is_empty(), m.buf.is_empty());
            assert_eq!(tx.capacity(), m.cap);
            assert_eq!(tx.is_closed(), m.send_fails(), "Sender::is_closed");
        }
        for rx in &self.receivers {
            assert_eq!(rx.len(), m.buf.len(), "Receiver::len");
            assert_eq!(rx.capacity(), m.cap);
            assert_eq!(rx.is_closed(), m.closed, "Receiver::is_closed");
        }
        assert_eq!(
            self.alive.load(Ordering::SeqCst),
            m.buf.len() as isize,
            "values alive besides the buffered ones (leak), or too few (lost)"
        );
    }

    fn finish(self) {
        let alive = self.alive.clone();
        drop(self.senders);
        drop(self.receivers);
        assert_eq!(
            alive.load(Ordering::SeqCst),
            0,
            "dropping the channel drops its values"
        );
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn one_channel_follows_the_model(flavor in flavor(), ops in prop::collection::vec(op(), 1..80)) {
        let mut h = Harness::new(flavor);
        for op in &ops {
            h.apply(op);
        }
        h.finish();
    }
}

// ---------------------------------------------------------------------------
// Select::try_select over 2–4 channels.

/// One channel of a select scenario, set up in a random state.
#[derive(Clone, Debug)]
struct ChanSetup {
    flavor: Flavor,
    prefill: usize,
    closed: bool,
    /// Every receiver dropped (the channel then only gets send arms).
    receivers_gone: bool,
}

fn chan_setup() -> impl Strategy<Value = ChanSetup> {
    (
        flavor(),
        0..6usize,
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(flavor, prefill, closed, receivers_gone)| ChanSetup {
            flavor,
            prefill,
            closed,
            receivers_gone,
        })
}

#[derive(Clone, Copy, Debug)]
enum ArmKind {
    Recv,
    Send,
}

#[derive(Clone, Debug)]
enum Step {
    /// `try_select` over arms (channel index, kind), plus a `never()` arm.
    TrySelect(Vec<(usize, ArmKind)>, bool),
    TrySend(usize),
    TryRecv(usize),
    Close(usize),
}

fn step() -> impl Strategy<Value = Step> {
    let arm = (
        0..4usize,
        prop_oneof![Just(ArmKind::Recv), Just(ArmKind::Send)],
    );
    prop_oneof![
        6 => (prop::collection::vec(arm, 1..6), any::<bool>())
            .prop_map(|(arms, never)| Step::TrySelect(arms, never)),
        2 => (0..4usize).prop_map(Step::TrySend),
        2 => (0..4usize).prop_map(Step::TryRecv),
        1 => (0..4usize).prop_map(Step::Close),
    ]
}

struct SelectHarness {
    ends: Vec<(Sender<Token>, Option<Receiver<Token>>)>,
    models: Vec<Model>,
    alive: Arc<AtomicIsize>,
    next_id: u32,
}

impl SelectHarness {
    fn new(setups: &[ChanSetup]) -> SelectHarness {
        let mut h = SelectHarness {
            ends: Vec::new(),
            models: Vec::new(),
            alive: Arc::new(AtomicIsize::new(0)),
            next_id: 0,
        };
        for s in setups {
            let (tx, rx) = s.flavor.make();
            let mut model = Model::new(s.flavor.cap());
            for _ in 0..s.prefill {
                let t = h.token();
                let id = t.id;
                assert_eq!(observed_send(tx.try_send(t), id), model.send(id));
            }
            if s.closed {
                assert!(tx.close());
                model.close();
            }
            let rx = if s.receivers_gone {
                drop(rx);
                model.drop_receiver();
                None
            } else {
                Some(rx)
            };
            h.ends.push((tx, rx));
            h.models.push(model);
        }
        h
    }

    fn token(&mut self) -> Token {
        self.next_id += 1;
        Token::new(self.next_id, &self.alive)
    }

    fn step(&mut self, step: &Step) {
        let n = self.ends.len();
        match step {
            Step::TrySelect(arms, with_never) => self.try_select(arms, *with_never),
            Step::TrySend(c) => {
                let t = self.token();
                let id = t.id;
                let got = observed_send(self.ends[c % n].0.try_send(t), id);
                assert_eq!(got, self.models[c % n].send(id));
            }
            Step::TryRecv(c) => {
                if let Some(rx) = &self.ends[c % n].1 {
                    assert_eq!(observed_recv(rx.try_recv()), self.models[c % n].recv());
                }
            }
            Step::Close(c) => {
                assert_eq!(self.ends[c % n].0.close(), self.models[c % n].close());
            }
        }
        let buffered: usize = self.models.iter().map(|m| m.buf.len()).sum();
        assert_eq!(self.alive.load(Ordering::SeqCst), buffered as isize);
        for ((tx, _), m) in self.ends.iter().zip(&self.models) {
            assert_eq!(tx.len(), m.buf.len());
        }
    }

    fn try_select(&mut self, arms: &[(usize, ArmKind)], with_never: bool) {
        let n = self.ends.len();
        // Arms on a channel without receivers can only send.
        let arms: Vec<(usize, ArmKind)> = arms
            .iter()
            .map(|&(c, kind)| match (kind, &self.ends[c % n].1) {
                (ArmKind::Recv, None) => (c % n, ArmKind::Send),
                _ => (c % n, kind),
            })
            .collect();
        let ready: Vec<bool> = arms
            .iter()
            .map(|&(c, kind)| match kind {
                ArmKind::Recv => self.models[c].recv_ready(),
                ArmKind::Send => self.models[c].send_ready(),
            })
            .collect();
        let token = self.token();
        let id = token.id;
        let never = chan::never::<Token>();
        let ends = &self.ends;
        let mut sel = Select::new();
        let mut index_of_arm = Vec::new();
        for &(c, kind) in &arms {
            index_of_arm.push(match kind {
                ArmKind::Recv => sel.recv(ends[c].1.as_ref().expect("has receivers")),
                ArmKind::Send => sel.send(&ends[c].0),
            });
        }
        let never_index = with_never.then(|| sel.recv(&never));
        let Ok(oper) = sel.try_select() else {
            assert!(
                !ready.contains(&true),
                "try_select found nothing, but arms {ready:?} of {arms:?} are ready"
            );
            return; // `token` drops here: it was never sent
        };
        assert_ne!(Some(oper.index()), never_index, "never() was selected");
        let arm = index_of_arm
            .iter()
            .position(|&i| i == oper.index())
            .expect("the index of an arm");
        assert!(
            ready[arm],
            "arm {arm} ({:?}) was chosen but is not ready",
            arms[arm]
        );
        let (c, kind) = arms[arm];
        let model = &mut self.models[c];
        match kind {
            ArmKind::Recv => {
                let got = match oper.recv(ends[c].1.as_ref().expect("has receivers")) {
                    Ok(t) => RecvOutcome::Got(t.id),
                    Err(RecvError) => RecvOutcome::Disconnected,
                };
                assert_eq!(got, model.recv());
            }
            ArmKind::Send => {
                let got = match oper.send(&ends[c].0, token) {
                    Ok(()) => SendOutcome::Sent,
                    Err(SendError(t)) => {
                        assert_eq!(t.id, id);
                        SendOutcome::Disconnected
                    }
                };
                assert_eq!(got, model.send(id));
            }
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn try_select_takes_exactly_one_ready_arm(
        setups in prop::collection::vec(chan_setup(), 2..=4),
        steps in prop::collection::vec(step(), 1..24),
    ) {
        let mut h = SelectHarness::new(&setups);
        for step in &steps {
            h.step(step);
        }
        let alive = h.alive.clone();
        drop(h);
        assert_eq!(alive.load(Ordering::SeqCst), 0);
    }
}

// ---------------------------------------------------------------------------
// Go's rule: among ready arms, one is chosen uniformly at random.

#[test]
fn try_select_spreads_its_choice_over_every_ready_arm() {
    const ROUNDS: usize = 4000;
    let chans: Vec<_> = (0..4).map(|_| chan::unbounded::<usize>()).collect();
    for (k, (tx, _)) in chans.iter().enumerate() {
        for v in 0..ROUNDS {
            tx.send(k * ROUNDS + v).unwrap();
        }
    }
    let mut chosen = [0usize; 4];
    let mut next = [0usize; 4];
    for _ in 0..ROUNDS {
        let mut sel = Select::new();
        for (_, rx) in &chans {
            sel.recv(rx);
        }
        let oper = sel.try_select().expect("every arm is ready");
        let k = oper.index();
        let v = oper.recv(&chans[k].1).unwrap();
        assert_eq!(v, k * ROUNDS + next[k], "each channel stays FIFO");
        next[k] += 1;
        chosen[k] += 1;
    }
    // Expected 1000 each, standard deviation ~27: 200 either way is over
    // seven deviations, so this fails only for a biased choice.
    for (k, n) in chosen.iter().enumerate() {
        assert!(
            (800..=1200).contains(n),
            "arm {k} chosen {n} times: {chosen:?}"
        );
    }
}
