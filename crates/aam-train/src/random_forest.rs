//! Random-forest classifier: the classical baseline of `aam baseline` and
//! `aam benchmark`. Breiman (2001) "Random Forests", Machine Learning 45:5, as
//! scikit-learn's `RandomForestClassifier` implements it: one multi-class CART tree per
//! bootstrap sample, each split the best Gini decrease over `max_features` randomly drawn
//! features (more are drawn while every one drawn is constant in the node), trees grown
//! until their leaves are pure or hold `min_samples_leaf` samples, class probabilities the
//! mean over trees of each leaf's class fractions. Trees grow in parallel (rayon), each
//! from its own seeded stream, so the forest is the same on any thread count.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Settings of a [`RandomForest`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForestParams {
    /// Trees (scikit-learn's `n_estimators`).
    pub n_trees: usize,
    /// Features tried at each split (at least 1; scikit-learn's classification default
    /// is √(features)).
    pub max_features: usize,
    /// Fewest (bootstrap) samples in a leaf.
    pub min_samples_leaf: usize,
    /// Seed of the bootstrap samples and feature draws.
    pub seed: u64,
}

#[derive(Debug, Clone)]
enum Node {
    /// `x[feature] <= threshold` goes to `left`, else `right` (node indices).
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
    /// Class fractions start at `offset` in the tree's `leaf_probabilities`.
    Leaf { offset: usize },
}

#[derive(Debug, Clone)]
struct Tree {
    nodes: Vec<Node>,
    leaf_probabilities: Vec<f64>,
}

/// A trained multi-class random forest.
#[derive(Debug, Clone)]
pub struct RandomForest {
    trees: Vec<Tree>,
    n_classes: usize,
    n_features: usize,
}

/// The training data as the tree builder reads it: one column per feature.
struct Columns<'a> {
    columns: Vec<Vec<f64>>,
    classes: &'a [usize],
    n_classes: usize,
}

impl RandomForest {
    /// Grows a forest on `x` (`[n_samples][n_features]`, row-major `n_samples ×
    /// n_features` values, e.g. relative abundances) and class indices `y` (`< n_classes`).
    ///
    /// Panics when `x.len() != y.len() * n_features`, a class index is out of range, or
    /// `y` is empty (the callers check their inputs first).
    pub fn fit(
        x: &[f64],
        n_features: usize,
        y: &[usize],
        n_classes: usize,
        params: ForestParams,
    ) -> RandomForest {
        let n = y.len();
        assert!(n > 0 && x.len() == n * n_features, "x must be n_samples × n_features");
        assert!(y.iter().all(|&c| c < n_classes), "class index out of range");
        let columns = Columns {
            columns: (0..n_features)
                .map(|f| (0..n).map(|i| x[i * n_features + f]).collect())
                .collect(),
            classes: y,
            n_classes,
        };
        let trees = (0..params.n_trees)
            .into_par_iter()
            .map(|t| {
                // One stream per tree: the forest does not depend on the thread count.
                let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
                rng.set_stream(t as u64);
                grow_tree(&columns, &params, &mut rng)
            })
            .collect();
        RandomForest {
            trees,
            n_classes,
            n_features,
        }
    }

    /// Class probabilities `[n_samples][n_classes]` of `x` (row-major `n_samples ×
    /// n_features`): the mean over trees of the class fractions of the leaf reached.
    ///
    /// Panics when `x.len()` is not a multiple of the training feature count.
    pub fn predict_proba(&self, x: &[f64]) -> Vec<Vec<f64>> {
        let p = self.n_features;
        assert!(p == 0 || x.len() % p == 0, "x must be n_samples × n_features");
        let n = if p == 0 { 0 } else { x.len() / p };
        (0..n)
            .into_par_iter()
            .map(|i| {
                let row = &x[i * p..(i + 1) * p];
                let mut sum = vec![0.0; self.n_classes];
                for tree in &self.trees {
                    let offset = tree.leaf(row);
                    for (s, v) in sum
                        .iter_mut()
                        .zip(&tree.leaf_probabilities[offset..offset + self.n_classes])
                    {
                        *s += v;
                    }
                }
                let k = self.trees.len().max(1) as f64;
                sum.iter().map(|s| s / k).collect()
            })
            .collect()
    }
}

impl Tree {
    fn leaf(&self, row: &[f64]) -> usize {
        let mut node = 0;
        loop {
            match &self.nodes[node] {
                Node::Leaf { offset } => return *offset,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => node = if row[*feature] <= *threshold { *left } else { *right },
            }
        }
    }
}

/// The best split of one feature: (Gini proxy to maximise, threshold, samples left).
type Candidate = (f64, f64, usize);

fn grow_tree(data: &Columns<'_>, params: &ForestParams, rng: &mut ChaCha8Rng) -> Tree {
    let n = data.classes.len();
    let k = data.n_classes;
    // Bootstrap sample: n draws with replacement (duplicates weigh as in scikit-learn).
    let mut samples: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
    let mut tree = Tree {
        nodes: Vec::new(),
        leaf_probabilities: Vec::new(),
    };
    let mut features: Vec<usize> = (0..data.columns.len()).collect();
    let min_leaf = params.min_samples_leaf.max(1);
    let max_features = params.max_features.clamp(1, features.len().max(1));
    // Depth-first with an explicit stack: (node index, range of `samples`).
    tree.nodes.push(Node::Leaf { offset: 0 });
    let mut stack = vec![(0usize, 0usize, n)];
    let mut values: Vec<(f64, usize)> = Vec::with_capacity(n);
    while let Some((id, start, end)) = stack.pop() {
        let node = &mut samples[start..end];
        let mut counts = vec![0usize; k];
        for &i in node.iter() {
            counts[data.classes[i]] += 1;
        }
        let size = end - start;
        let pure = counts.iter().filter(|&&c| c > 0).count() <= 1;
        let mut best: Option<(usize, Candidate)> = None;
        if !pure && size >= 2 * min_leaf {
            // Features in random order; stop after max_features of them, or later while
            // every one tried was constant here.
            let mut tried = 0;
            let mut informative = 0;
            for j in 0..features.len() {
                if tried >= max_features && informative > 0 {
                    break;
                }
                let pick = rng.random_range(j..features.len());
                features.swap(j, pick);
                let f = features[j];
                tried += 1;
                let column = &data.columns[f];
                values.clear();
                values.extend(node.iter().map(|&i| (column[i], data.classes[i])));
                values.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
                if values[0].0 == values[size - 1].0 {
                    continue;
                }
                informative += 1;
                if let Some(c) = best_threshold(&values, &counts, min_leaf) {
                    if best.is_none_or(|(_, b)| c.0 > b.0) {
                        best = Some((f, c));
                    }
                }
            }
        }
        match best {
            Some((feature, (_, threshold, n_left))) => {
                let column = &data.columns[feature];
                // Partition the node's samples: `<= threshold` first.
                let mut lo = 0;
                for j in 0..size {
                    if column[node[j]] <= threshold {
                        node.swap(lo, j);
                        lo += 1;
                    }
                }
                debug_assert_eq!(lo, n_left);
                let left = tree.nodes.len();
                tree.nodes.push(Node::Leaf { offset: 0 });
                tree.nodes.push(Node::Leaf { offset: 0 });
                tree.nodes[id] = Node::Split {
                    feature,
                    threshold,
                    left,
                    right: left + 1,
                };
                stack.push((left + 1, start + lo, end));
                stack.push((left, start, start + lo));
            }
            None => {
                let offset = tree.leaf_probabilities.len();
                tree.leaf_probabilities
                    .extend(counts.iter().map(|&c| c as f64 / size as f64));
                tree.nodes[id] = Node::Leaf { offset };
            }
        }
    }
    tree
}

/// The split of `values` (feature value, class; sorted by value) that most decreases
/// the weighted Gini impurity with at least `min_leaf` samples per side, as (Σ_c nL_c²/nL
/// + Σ_c nR_c²/nR, which the decrease grows with; threshold midway between the two
/// values; samples left); `None` when no threshold separates distinct values.
fn best_threshold(values: &[(f64, usize)], totals: &[usize], min_leaf: usize) -> Option<Candidate> {
    let n = values.len();
    let mut left = vec![0usize; totals.len()];
    // Σ_c nL_c² and Σ_c nR_c², updated as one sample moves left.
    let mut left_sq = 0.0f64;
    let mut right_sq: f64 = totals.iter().map(|&c| (c * c) as f64).sum();
    let mut best: Option<Candidate> = None;
    for i in 0..n - 1 {
        let c = values[i].1;
        let (l, r) = (left[c] as f64, (totals[c] - left[c]) as f64);
        left_sq += 2.0 * l + 1.0;
        right_sq -= 2.0 * r - 1.0;
        left[c] += 1;
        let n_left = i + 1;
        if n_left < min_leaf || n - n_left < min_leaf || values[i].0 == values[i + 1].0 {
            continue;
        }
        let score = left_sq / n_left as f64 + right_sq / (n - n_left) as f64;
        if best.is_none_or(|b| score > b.0) {
            let (a, b) = (values[i].0, values[i + 1].0);
            let mid = a + (b - a) / 2.0;
            // Rounding can put the midpoint on the upper value: keep it on the left side.
            let threshold = if mid < b { mid } else { a };
            best = Some((score, threshold, n_left));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gini_split_of_a_hand_computed_case() {
        // Values 1, 2, 3, 4 with classes 0, 0, 1, 1: the split at 2.5 is pure,
        // Σ nL_c²/nL + Σ nR_c²/nR = 4/2 + 4/2 = 4.
        let v = [(1.0, 0), (2.0, 0), (3.0, 1), (4.0, 1)];
        let (score, threshold, n_left) = best_threshold(&v, &[2, 2], 1).unwrap();
        assert_eq!((score, threshold, n_left), (4.0, 2.5, 2));
        // Tied values are never separated: 1, 1, 1, 2 can split only at 1.5.
        let v = [(1.0, 0), (1.0, 1), (1.0, 0), (2.0, 1)];
        let (score, threshold, _) = best_threshold(&v, &[2, 2], 1).unwrap();
        assert_eq!(threshold, 1.5);
        // Left {0, 1, 0}: 4/3 + 1/3 = 5/3; right {1}: 1.
        assert!((score - (5.0 / 3.0 + 1.0)).abs() < 1e-12);
        // min_samples_leaf 2 leaves only the middle threshold of four distinct values.
        let v = [(1.0, 0), (2.0, 1), (3.0, 0), (4.0, 1)];
        assert_eq!(best_threshold(&v, &[2, 2], 2).unwrap().1, 2.5);
    }

    #[test]
    fn separable_classes_are_predicted_and_the_forest_is_seeded() {
        // Class = which of three features is large; 60 samples, 20 noise features.
        let (n, p) = (60, 23);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let y: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let x: Vec<f64> = (0..n * p)
            .map(|k| {
                let (i, f) = (k / p, k % p);
                if f == y[i] {
                    1.0 + rng.random::<f64>()
                } else {
                    rng.random::<f64>() * 0.5
                }
            })
            .collect();
        let params = ForestParams {
            n_trees: 50,
            max_features: 5,
            min_samples_leaf: 1,
            seed: 7,
        };
        let forest = RandomForest::fit(&x, p, &y, 3, params);
        let probs = forest.predict_proba(&x[..6 * p]);
        for (i, pr) in probs.iter().enumerate() {
            assert!((pr.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let best = (0..3).max_by(|&a, &b| pr[a].total_cmp(&pr[b])).unwrap();
            assert_eq!(best, y[i], "sample {i}: {pr:?}");
        }
        // The same seed gives the same forest, on another thread count too.
        let again = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| RandomForest::fit(&x, p, &y, 3, params));
        assert_eq!(again.predict_proba(&x), forest.predict_proba(&x));
    }
}
