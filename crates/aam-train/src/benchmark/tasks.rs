//! The standard datasets of the benchmark (`shared/data`, see its README) and the
//! targets each is scored on, with the subject column that keeps a subject's samples
//! on one side of the split (the datasets' SOURCE.md: otherwise a model can memorise
//! subjects and the score is inflated).

/// One prediction target of a dataset.
pub struct Task {
    /// Metadata column.
    pub column: &'static str,
    /// `categorical` or `numeric` (the `--target-type` value).
    pub kind: &'static str,
}

/// One standard dataset.
pub struct Dataset {
    /// Folder name under the data root.
    pub name: &'static str,
    /// One line for the report.
    pub description: &'static str,
    /// Read length of its ASVs (the model's max bp).
    pub max_bp: usize,
    /// Column whose values stay on one side of the split.
    pub group_column: &'static str,
    /// Targets, in report order.
    pub tasks: &'static [Task],
}

/// The standard datasets, smallest first.
pub const DATASETS: &[Dataset] = &[
    Dataset {
        name: "moving-pictures",
        description: "QIIME 2 tutorial: 34 samples × 770 ASVs, 120 bp, 2 people × 4 body sites",
        max_bp: 120,
        group_column: "subject",
        tasks: &[
            Task {
                column: "body-site",
                kind: "categorical",
            },
            Task {
                column: "days-since-experiment-start",
                kind: "numeric",
            },
        ],
    },
    Dataset {
        name: "circadian-ihc",
        description:
            "mouse faeces, 46 samples × 500 ASVs, 90 bp, Air vs intermittent hypoxia/hypercapnia",
        max_bp: 90,
        group_column: "host_subject_id",
        tasks: &[Task {
            column: "exposure_type",
            kind: "categorical",
        }],
    },
    Dataset {
        name: "ibd-2538",
        description:
            "human stool, 449 samples × 9,946 ASVs, 100 bp, Crohn's disease vs control, 24 subjects",
        max_bp: 100,
        group_column: "host_subject_id",
        tasks: &[Task {
            column: "ibd",
            kind: "categorical",
        }],
    },
];
