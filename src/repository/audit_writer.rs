//! Group commit of the audit events of reads (issue 8).
//!
//! A read of personal data must not answer before its audit event is
//! durable. Committing one event per request costs a transaction and a WAL
//! flush per read, which bounded an audited read at a fifth of a plain
//! one. Here the requests of the moment share that cost: each hands its
//! rows to an [`AuditWriter`] and waits; a writer task takes everything
//! queued, writes it with one multi-row `INSERT` (its own implicit
//! transaction, committed when the statement returns) and only then
//! releases every request of the batch, each with the outcome of the one
//! statement its rows were in. A request is never released before its
//! rows are committed, and a failed write fails every read of the batch
//! (a `503`), never skips an audit.
//!
//! While one batch is being written the next one fills, so batches grow
//! with load and stay at one row when the service is idle (no timer, no
//! added latency). Each thread that records (each HTTP worker) has its own
//! queue and writer tasks, on its own runtime, writing through its own
//! hot-path connections ([`HotPg`]): a request, its batch and the batch's
//! statement stay on one thread, with no cross-thread wake-up on the way.
//! `OSTWERK_AUDIT_WRITERS` tasks per thread write in turn, so that a batch
//! in flight need not stall the queue behind it.
//!
//! Writes inside a transaction (changes of personal data) keep
//! `audit::record` on their own transaction: their event must commit or roll
//! back with the change.
use std::{cell::RefCell, sync::Arc};

use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel};
use thread_local::ThreadLocal;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{audit, hot_pg::HotPg};
use crate::{
    domain::audit::{AuditContext, AuditEntry},
    entities::audit_event::{Entity, Model},
};

/// Most rows in one `INSERT` (10 columns: well below every bind limit).
const MAX_ROWS: usize = 1_000;
/// Requests waiting at most per thread; beyond that a read waits for room
/// (back pressure).
const QUEUE: usize = 8_192;

struct Job {
    rows: Vec<Model>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The handle requests hand their audit rows to (cheap to clone).
#[derive(Clone)]
pub struct AuditWriter {
    setup: Arc<Setup>,
}

struct Setup {
    /// Each thread's queue (see [`AuditWriter::queue`]).
    queues: ThreadLocal<RefCell<mpsc::Sender<Job>>>,
    db: DatabaseConnection,
    hot: Option<HotPg>,
    writers: u16,
}

impl AuditWriter {
    /// A writer whose batches go through `hot` (one prepared statement)
    /// where there is one, else through `db`. `writers` tasks per thread take
    /// turns (`OSTWERK_AUDIT_WRITERS`): while one waits for its commit, the
    /// next batch fills and goes out. The tasks start with a thread's first
    /// record and end with its runtime.
    pub fn start(db: DatabaseConnection, hot: Option<HotPg>, writers: u16) -> Self {
        Self { setup: Arc::new(Setup { queues: ThreadLocal::new(), db, hot, writers }) }
    }

    /// Records `entries` and returns once they are committed. An error is a
    /// failed audit write (`audit::is_write_failure`), a `503`.
    pub async fn record(&self, ctx: &AuditContext, entries: &[AuditEntry]) -> Result<(), DbErr> {
        if entries.is_empty() {
            return Ok(());
        }
        let rows = audit::models(ctx, entries);
        let (done, outcome) = oneshot::channel();
        // `write_failed` counts the failure and makes it a `503`.
        let failed = |why: &str| audit::write_failed(DbErr::Custom(why.to_owned()));
        self.queue().send(Job { rows, done }).await.map_err(|_| failed("the audit writer has stopped"))?;
        match outcome.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(failed(&why)),
            Err(_) => Err(failed("the audit writer stopped before the write")),
        }
    }

    /// This thread's queue, with its writer tasks spawned on the current
    /// runtime at first use (again if that runtime has ended since: its
    /// tasks ended with it and the queue is closed).
    fn queue(&self) -> mpsc::Sender<Job> {
        let queue = self.setup.queues.get_or(|| RefCell::new(self.spawn_writers()));
        if queue.borrow().is_closed() {
            *queue.borrow_mut() = self.spawn_writers();
        }
        queue.borrow().clone()
    }

    /// A new queue and its `writers` tasks on the current runtime.
    fn spawn_writers(&self) -> mpsc::Sender<Job> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..self.setup.writers.max(1) {
            tokio::spawn(write_batches(self.setup.db.clone(), self.setup.hot.clone(), queue.clone()));
        }
        jobs
    }
}

/// One writer: takes the first waiting job (blocking), everything else
/// already queued up to [`MAX_ROWS`], lets the next writer collect while it
/// writes them in one statement, then answers each job.
async fn write_batches(db: DatabaseConnection, hot: Option<HotPg>, queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let mut batch = Vec::new();
        {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else { return };
            // Let the requests this thread can run right now (their reads
            // just answered) queue their rows first: they join this batch
            // instead of paying a commit of their own. No timer: this only
            // waits for work that is already runnable.
            tokio::task::yield_now().await;
            let mut rows = first.rows.len();
            batch.push(first);
            while rows < MAX_ROWS {
                let Ok(job) = queue.try_recv() else { break };
                rows += job.rows.len();
                batch.push(job);
            }
        }
        let rows: Vec<Model> = batch.iter_mut().flat_map(|j| std::mem::take(&mut j.rows)).collect();
        let outcome = match &hot {
            Some(hot) => hot.insert_audit(&rows).await,
            None => {
                let rows = rows.into_iter().map(|m| m.into_active_model().reset_all());
                Entity::insert_many(rows).exec_without_returning(&db).await.map(|_| ())
            }
        }
        .map_err(|e| e.to_string());
        if let Err(why) = &outcome {
            tracing::error!(error = %why, requests = batch.len(), "audit batch write failed");
        }
        for job in batch {
            // A request that went away (client disconnected) no longer waits.
            drop(job.done.send(outcome.clone()));
        }
    }
}
