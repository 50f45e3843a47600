//! Operators' commands to a running driver: sent from any thread, applied
//! between two batches, each answered with what it changed.

use std::sync::{mpsc, Arc, OnceLock};

use quiver_engine::{Control, ControlError, Input, StrategyEntry, Transition};

use crate::{Driver, Inference};

/// What an operator asks, naming strategies by their config id.
pub enum Request {
    Pause(String),
    Resume(String),
    Stop(String),
    Reset(String),
    /// New instances for existing ids, all or none
    /// ([`Control::Replace`]).
    Replace(Vec<StrategyEntry>),
    /// Swap in an engine built for a new strategy set, carrying the ids
    /// listed over whole ([`Control::Rebuild`]).
    Rebuild {
        engine: Box<quiver_engine::Engine>,
        carried: Vec<String>,
    },
}

/// The lifecycle changes a command made (none when the strategy already
/// was where it asked), or why it was refused.
pub type Reply = Result<Vec<Transition>, ControlError>;

/// A request and where its reply goes.
pub struct Command {
    pub request: Request,
    pub reply: Option<mpsc::SyncSender<Reply>>,
}

type Waker = Box<dyn Fn() + Send + Sync>;

/// The driver's end of the control channel.
pub struct ControlReceiver {
    commands: mpsc::Receiver<Command>,
    wake: Arc<OnceLock<Waker>>,
}

/// Sends commands to a driver; cheap to clone.
#[derive(Clone)]
pub struct ControlHandle {
    commands: mpsc::Sender<Command>,
    wake: Arc<OnceLock<Waker>>,
}

/// A control channel: the handle for operators, the receiver for
/// [`Driver::with_control`].
pub fn control_channel() -> (ControlHandle, ControlReceiver) {
    let (commands, receiver) = mpsc::channel();
    let wake = Arc::new(OnceLock::new());
    (
        ControlHandle {
            commands,
            wake: Arc::clone(&wake),
        },
        ControlReceiver {
            commands: receiver,
            wake,
        },
    )
}

impl ControlReceiver {
    /// Calls `wake` after each command is sent, so a driver waiting for its
    /// next batch applies the command even while no ticks arrive (the feed
    /// turns the wake-up into a [`Next::Idle`](crate::Next::Idle)). Set
    /// once; later calls are ignored. The driver keeps `wake` for as long as
    /// it runs, so it must not keep the feed open: hold a weak sender.
    pub fn wake_with(&self, wake: impl Fn() + Send + Sync + 'static) {
        let _ = self.wake.set(Box::new(wake));
    }
}

/// The driver is gone; nothing applies commands any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disconnected;

impl ControlHandle {
    /// Sends `request`; its reply arrives on the returned receiver once
    /// the driver applied it.
    pub fn send(&self, request: Request) -> Result<mpsc::Receiver<Reply>, Disconnected> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.commands
            .send(Command {
                request,
                reply: Some(reply),
            })
            .map_err(|_| Disconnected)?;
        if let Some(wake) = self.wake.get() {
            wake();
        }
        Ok(answer)
    }
}

impl<I: Inference> Driver<I> {
    pub(crate) fn has_commands(&mut self) -> bool {
        let Some(control) = &self.control else {
            return false;
        };
        match control.commands.try_recv() {
            Ok(command) => {
                self.waiting.push(command);
                true
            }
            Err(_) => !self.waiting.is_empty(),
        }
    }

    /// Applies every command received so far, in order, to the (quiet)
    /// engine, and answers each. After a rebuild, `rebuilt` sees the new
    /// engine before the rebuild is answered, so whoever asked for it cannot
    /// act on the answer before the consumer followed.
    pub(crate) fn apply_commands(&mut self, mut rebuilt: impl FnMut(&quiver_engine::Engine)) {
        if let Some(control) = &self.control {
            self.waiting.extend(control.commands.try_iter());
        }
        for command in std::mem::take(&mut self.waiting) {
            let rebuild = matches!(command.request, Request::Rebuild { .. });
            let reply = self.apply(command.request);
            if rebuild && reply.is_ok() {
                rebuilt(&self.engine);
            }
            if let Some(to) = command.reply {
                // The operator may have stopped waiting; the change stands.
                let _ = to.send(reply);
            }
        }
    }

    fn apply(&mut self, request: Request) -> Reply {
        let engine = &self.engine;
        let index = |id: &str| {
            engine
                .strategy_index(id)
                .ok_or_else(|| ControlError::UnknownId(id.to_owned()))
        };
        let control = match request {
            Request::Pause(id) => Control::Pause(index(&id)?),
            Request::Resume(id) => Control::Resume(index(&id)?),
            Request::Stop(id) => Control::Stop(index(&id)?),
            Request::Reset(id) => Control::Reset(index(&id)?),
            Request::Replace(entries) => Control::Replace(entries),
            Request::Rebuild { engine, carried } => Control::Rebuild { engine, carried },
        };
        let (changes, refusals) = (self.out.transitions.len(), self.out.refused.len());
        self.engine.process(Input::Control(control), &mut self.out);
        // Both stay in the output too, for the consumer to log.
        match self.out.refused.get(refusals) {
            Some(err) => Err(err.clone()),
            None => Ok(self.out.transitions[changes..].to_vec()),
        }
    }
}
