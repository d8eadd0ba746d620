//! Dynamic batching: token requests that arrive within [`ServeOptions::max_delay`] of
//! each other are stacked into one forward pass of up to [`ServeOptions::max_batch`]
//! samples (requests with the same number of ASV slots share a pass), run on a blocking
//! thread, and their rows handed back to each request.
//!
//! A request that fails inside a shared pass (a token outside the vocabulary, say) is
//! rerun alone, so only it gets the error.

use std::collections::BTreeMap;
use std::sync::Arc;

use aam_runtime::{Model, RawOutputs, RuntimeError};
use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, Axis};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::ServeOptions;

/// One request's tokens int64 `[batch, n_asv, max_bp + 1]`, its read counts f32
/// `[batch, n_asv, 1]` (models that read counts), its category indices int64 `[batch,
/// n_columns]` (models conditioned on metadata categories), and where its outputs go.
struct Job {
    tokens: Array3<i64>,
    counts: Option<Array3<f32>>,
    ids: Option<Array2<i64>>,
    reply: oneshot::Sender<Result<RawOutputs, RuntimeError>>,
}

/// Why a request got no outputs.
#[derive(Debug)]
pub enum BatchError {
    /// The model refused the tokens or failed on them.
    Model(RuntimeError),
    /// The server is stopping (the batching task has ended).
    Stopping,
}

/// The handle requests submit their tokens to; the batching task runs as long as it.
#[derive(Clone)]
pub struct Batcher {
    jobs: mpsc::Sender<Job>,
}

impl Batcher {
    /// Starts the batching task on the current tokio runtime.
    pub fn start(model: Arc<Model>, options: &ServeOptions, metrics: Arc<Metrics>) -> Batcher {
        let (jobs, queue) = mpsc::channel(options.max_concurrency.max(1) * 2);
        tokio::spawn(collect(queue, model, options.clone(), metrics));
        Batcher { jobs }
    }

    /// Runs `tokens` `[batch, n_asv, max_bp + 1]` in the next batch, with their read
    /// counts `[batch, n_asv, 1]` (which a model that reads counts, a count embedding or
    /// abundance-weighted pooling, needs) and category indices `[batch, n_columns]`
    /// (which a model conditioned on metadata categories needs).
    ///
    /// Errors: the model refuses the inputs or fails (its message), or the server is
    /// stopping.
    pub async fn infer(
        &self,
        tokens: Array3<i64>,
        counts: Option<Array3<f32>>,
        ids: Option<Array2<i64>>,
    ) -> Result<RawOutputs, BatchError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { tokens, counts, ids, reply }).await.map_err(|_| BatchError::Stopping)?;
        answer.await.map_err(|_| BatchError::Stopping)?.map_err(BatchError::Model)
    }
}

/// Forms batches: the first waiting request opens one, which closes after `max_delay`
/// or at `max_batch` samples; at most `workers` batches run at once.
async fn collect(mut queue: mpsc::Receiver<Job>, model: Arc<Model>, options: ServeOptions, metrics: Arc<Metrics>) {
    let workers = Arc::new(Semaphore::new(options.workers.max(1)));
    while let Some(first) = queue.recv().await {
        let mut rows = first.tokens.dim().0;
        let mut jobs = vec![first];
        let deadline = Instant::now() + options.max_delay;
        while rows < options.max_batch {
            match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(Some(job)) => {
                    rows += job.tokens.dim().0;
                    jobs.push(job);
                }
                _ => break,
            }
        }
        let Ok(permit) = workers.clone().acquire_owned().await else { return };
        let (model, metrics) = (model.clone(), metrics.clone());
        tokio::task::spawn_blocking(move || {
            run_batch(&model, jobs, &metrics);
            drop(permit);
        });
    }
}

/// One job's forward pass alone.
fn run_one(model: &Model, job: &Job) -> Result<RawOutputs, RuntimeError> {
    forward(model, job.tokens.view(), job.counts.as_ref().map(|c| c.view()), job.ids.as_ref().map(|i| i.view()))
}

/// A forward pass with the counts a model that reads them takes and the category
/// indices a conditioned model takes.
fn forward(
    model: &Model,
    tokens: ArrayView3<'_, i64>,
    counts: Option<ArrayView3<'_, f32>>,
    ids: Option<ArrayView2<'_, i64>>,
) -> Result<RawOutputs, RuntimeError> {
    let counts = counts.filter(|_| model.uses_counts());
    match (ids, counts) {
        (Some(i), c) => model.run_with_categories(tokens, c, i),
        (None, Some(c)) => model.run_with_counts(tokens, c),
        (None, None) => model.run(tokens),
    }
}

/// Runs the jobs grouped by their `[n_asv, width]`, each group in one forward pass.
fn run_batch(model: &Model, jobs: Vec<Job>, metrics: &Metrics) {
    let mut groups: BTreeMap<(usize, usize), Vec<Job>> = BTreeMap::new();
    for job in jobs {
        let (_, n_asv, width) = job.tokens.dim();
        groups.entry((n_asv, width)).or_default().push(job);
    }
    for (_, group) in groups {
        if group.len() == 1 {
            let job = group.into_iter().next().expect("one job");
            metrics.observe_batch(job.tokens.dim().0);
            let result = run_one(model, &job);
            let _ = job.reply.send(result);
            continue;
        }
        let views: Vec<_> = group.iter().map(|j| j.tokens.view()).collect();
        let stacked = ndarray::concatenate(Axis(0), &views).expect("same n_asv and width");
        metrics.observe_batch(stacked.dim().0);
        // A count model's requests all carry counts (checked on arrival); a missing one
        // makes the stacked pass fail, and each request is then rerun alone.
        let counts: Option<Vec<_>> = group.iter().map(|j| j.counts.as_ref().map(|c| c.view())).collect();
        let stacked_counts = counts
            .filter(|_| model.uses_counts())
            .map(|c| ndarray::concatenate(Axis(0), &c).expect("same n_asv"));
        // Likewise a conditioned model's category indices (same columns in every job).
        let ids: Option<Vec<_>> = group.iter().map(|j| j.ids.as_ref().map(|i| i.view())).collect();
        let stacked_ids = ids.and_then(|i| ndarray::concatenate(Axis(0), &i).ok());
        let result = forward(
            model,
            stacked.view(),
            stacked_counts.as_ref().map(|c| c.view()),
            stacked_ids.as_ref().map(|i| i.view()),
        );
        match result {
            Ok(out) => {
                let mut first = 0;
                for job in group {
                    let n = job.tokens.dim().0;
                    let _ = job.reply.send(Ok(rows(&out, first, first + n)));
                    first += n;
                }
            }
            // Someone's tokens were refused: each request alone, so only theirs fails.
            Err(_) => {
                for job in group {
                    metrics.observe_batch(job.tokens.dim().0);
                    let result = run_one(model, &job);
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}

/// Rows `from..to` of every output.
fn rows(out: &RawOutputs, from: usize, to: usize) -> RawOutputs {
    RawOutputs {
        embeddings: out.embeddings.slice(s![from..to, ..]).to_owned(),
        target_prediction: out.target_prediction.as_ref().map(|a| a.slice(s![from..to, ..]).to_owned()),
        class_probabilities: out.class_probabilities.as_ref().map(|a| a.slice(s![from..to, ..]).to_owned()),
        count_prediction: out.count_prediction.as_ref().map(|a| a.slice(s![from..to, .., ..]).to_owned()),
    }
}
