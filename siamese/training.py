"""Training of the twin and head on many writers at once, with checkpoints and resume.

Each batch holds P writers with G genuine signatures and F skilled forgeries each; every image is
embedded once and all pairs in the batch are formed. Three losses train the network together:
the L1 head's binary cross-entropy on all pairs (genuine-genuine positives; genuine-skilled forgery
and other-writer negatives), a margin loss on the embeddings' cosine similarity (so FAISS search
over embeddings is meaningful), and a cosine-margin writer classifier whose classes are each training
writer's genuine signatures and, separately, the forgeries of that writer (hard negatives).

Options tried after the shipped model (off by default, so its card's command still reproduces it;
README "Accuracy" has what each measured): ``ema_decay`` validates and saves an exponential moving
average of the weights, steadier from epoch to epoch than the raw weights; ``select_after_head_fit``
judges each epoch the way it would ship (head refitted on the training writers, validation writers
scored with the service's rule) instead of with the head trained alongside the twin;
``balance_datasets`` draws writers so that each dataset fills the same share of the batches;
``augment_profile="strong"`` widens the augmentation for unseen scanners and pens.

``keep="last"`` ships the last epoch instead of the best one on validation; ``folds``/``fold`` make
the run one fold of a cross-validation over the split's train and validation writers
(``bench/crossval.sh``).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from siamese.canvas_cache import canvases_to_batch, load_canvases, load_writer_canvases
from siamese.datasets import SignatureRecord, load_dataset, split_writers
from siamese.evaluation import build_trials, embed_canvases, index_records, score_trials, summarize
from siamese.head_fit import HeadFitConfig, fit_head
from siamese.network import NetworkConfig

SPLIT_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter of a training run; saved beside the weights and in the model card."""

    seed: int = 1234
    split_seed: int | None = None  # the writer split's seed; None: ``seed``
    epochs: int = 20
    steps_per_epoch: int = 150
    writers_per_batch: int = 16
    genuine_per_writer: int = 4
    forgeries_per_writer: int = 2
    learning_rate: float = 2e-3
    warmup_steps: int = 200
    weight_decay: float = 1e-4
    pair_weight: float = 1.0
    contrastive_weight: float = 0.5
    classifier_weight: float = 1.0
    classifier_scale: float = 16.0
    classifier_margin: float = 0.2
    augment: bool = True
    augment_profile: str = "standard"
    balance_datasets: bool = False
    ema_decay: float = 0.0
    select_after_head_fit: bool = False
    references: int = 5
    split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    folds: int = 0  # > 0: cross-validation, train + validation writers cut into this many folds
    fold: int = 1  # the fold (1..folds) that validates; the others train; test writers untouched
    keep: str = "best"  # which epoch's weights ship: "best" (validation) or "last"
    # Test-time views of the shipped model (``siamese.views``): its head fit, card and service embed
    # each canvas also at these zooms; epochs are validated on the canvas alone.
    test_time_zooms: tuple[float, ...] = ()
    network: NetworkConfig = field(default_factory=NetworkConfig)
    head: HeadFitConfig = field(default_factory=HeadFitConfig)

    @property
    def data_split_seed(self) -> int:
        """The seed of the writer split: ``split_seed``, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON-ready data."""
        return asdict(self)


@dataclass
class TrainingData:
    """All records, their cached canvases, and the writer split."""

    records: list[SignatureRecord]
    canvases: np.ndarray
    usable: np.ndarray
    split: dict[str, list[str]]


def load_training_data(
    data_dirs: Sequence[Path], config: TrainConfig, cache_dir: Path | None,
    layouts: Sequence[str | None] | None = None, progress: bool = True,
) -> TrainingData:
    """Load every dataset, preprocess (cached) and split writers per dataset, writer-disjoint."""
    records: list[SignatureRecord] = []
    layouts = list(layouts or [None] * len(data_dirs))
    for data_dir, layout in zip(data_dirs, layouts):
        records.extend(load_dataset(Path(data_dir), layout))
    canvases, usable = load_canvases([r.path for r in records], cache_dir, progress=progress)
    split: dict[str, list[str]] = {name: [] for name in SPLIT_NAMES}
    for dataset in sorted({r.dataset for r in records}):
        writers = sorted({r.writer for r in records if r.dataset == dataset})
        part = split_writers(writers, seed=config.data_split_seed, fractions=config.split_fractions)
        if config.folds:
            part = cross_validation_fold(part, config.folds, config.fold)
        for name in SPLIT_NAMES:
            split[name].extend(part[name])
    return TrainingData(records, canvases, usable, split)


class FoldError(ValueError):
    """A cross-validation fold that the data cannot make (too few writers for the folds)."""


def cross_validation_fold(part: dict[str, list[str]], folds: int, fold: int) -> dict[str, list[str]]:
    """Fold ``fold`` (1-based) of ``folds``: the split's train and validation writers, pooled, cut into
    ``folds`` disjoint folds; that fold validates, the others train. Test writers stay as they were."""
    if not 1 <= fold <= folds:
        raise FoldError(f"fold {fold} is not between 1 and {folds}")
    pool = part["train"] + part["validation"]  # already shuffled by the split's seed
    if len(pool) < folds:
        raise FoldError(f"{len(pool)} train and validation writers of a dataset cannot make {folds} folds")
    validation = pool[fold - 1::folds]
    return {"train": [w for w in pool if w not in validation], "validation": validation,
            "test": part["test"]}


class BatchSampler:
    """Draws P writers x (G genuine + F forgeries) index batches from the training writers."""

    def __init__(self, data: TrainingData, config: TrainConfig) -> None:
        genuine, forged = index_records(data.records, data.usable)
        self.writers = [w for w in data.split["train"] if len(genuine.get(w, [])) >= 2]
        self.genuine = genuine
        self.forged = forged
        self.config = config
        self.probabilities = writer_probabilities(self.writers, config.balance_datasets)

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image indices, writer class ids, genuine flags) of one batch."""
        config = self.config
        count = min(config.writers_per_batch, len(self.writers))
        chosen = rng.choice(len(self.writers), size=count, replace=False, p=self.probabilities)
        indices, writer_ids, genuine_flags = [], [], []
        for writer_id in chosen.tolist():
            writer = self.writers[writer_id]
            pool = self.genuine[writer]
            picks = rng.choice(len(pool), config.genuine_per_writer,
                               replace=len(pool) < config.genuine_per_writer)
            indices += [pool[i] for i in picks]
            writer_ids += [writer_id] * len(picks)
            genuine_flags += [True] * len(picks)
            forgeries = self.forged.get(writer, [])
            if forgeries and config.forgeries_per_writer:
                picks = rng.choice(len(forgeries), config.forgeries_per_writer,
                                   replace=len(forgeries) < config.forgeries_per_writer)
                indices += [forgeries[i] for i in picks]
                writer_ids += [writer_id] * len(picks)
                genuine_flags += [False] * len(picks)
        return np.array(indices), np.array(writer_ids, np.int32), np.array(genuine_flags)


def writer_probabilities(writers: Sequence[str], balance_datasets: bool) -> np.ndarray | None:
    """Sampling probability of each writer, equal per dataset; None (uniform) when not balancing.

    None rather than equal weights: numpy draws a different sequence when given ``p``, and the
    shipped model was trained with uniform draws.
    """
    if not balance_datasets:
        return None
    datasets = [writer.split("/", 1)[0] for writer in writers]
    counts = {name: datasets.count(name) for name in set(datasets)}
    weights = np.array([1.0 / counts[name] for name in datasets])
    return weights / weights.sum()


def evaluate_embeddings(model: Any, data: TrainingData, writers: Sequence[str], references: int,
                        seed: int = 0) -> dict[str, Any]:
    """Run the evaluation protocol on ``writers`` (per dataset and pooled) with ``model``."""
    embeddings = embed_writers(model, data, writers)
    genuine, forged = index_records(data.records, data.usable)
    results: dict[str, Any] = {}
    by_dataset: dict[str, list[str]] = {}
    for writer in writers:
        by_dataset.setdefault(writer.split("/", 1)[0], []).append(writer)
    for dataset, dataset_writers in sorted(by_dataset.items()):
        plan = build_trials(dataset_writers, genuine, forged, references, seed)
        if plan:
            results[dataset] = summarize(score_trials(model, embeddings, plan), model.threshold)
    return results


def mean_metric(results: dict[str, Any], key: str) -> float:
    """Mean of one metric over datasets (ignoring missing values)."""
    values = [r[key] for r in results.values() if r.get(key) is not None]
    return float(np.mean(values)) if values else float("nan")


class Trainer:
    """Holds the networks, optimizer and checkpoint manager of one training run."""

    def __init__(self, data: TrainingData, config: TrainConfig, work_dir: Path) -> None:
        import keras
        import tensorflow as tf

        from siamese.network import build_head, build_twin

        keras.utils.set_random_seed(config.seed)
        self.tf = tf
        self.data = data
        self.config = config
        self.sampler = BatchSampler(data, config)
        self.twin = build_twin(config.network)
        self.head = build_head(config.network.embedding_dim)
        classes = 2 * len(self.sampler.writers)
        initial = tf.random.normal([classes, config.network.embedding_dim], stddev=0.05, seed=config.seed)
        self.classifier = tf.Variable(initial, name="writer_classifier")
        self.averaged = config.ema_decay > 0
        parts = {}
        if self.averaged:  # built after everything random, so a run without averaging draws as before
            self.ema_twin = build_twin(config.network)
            self.ema_head = build_head(config.network.embedding_dim)
            self.ema_twin.set_weights(self.twin.get_weights())
            self.ema_head.set_weights(self.head.get_weights())
            parts = {"ema_twin": self.ema_twin, "ema_head": self.ema_head}
        total_steps = config.epochs * config.steps_per_epoch
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.learning_rate / 20, decay_steps=max(1, total_steps),
            warmup_target=config.learning_rate, warmup_steps=config.warmup_steps, alpha=0.02,
        )
        self.optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)
        self.epoch = tf.Variable(0, dtype=tf.int64, name="epoch")
        self.best_score = tf.Variable(np.inf, dtype=tf.float64, name="best_score")
        self.checkpoint = tf.train.Checkpoint(twin=self.twin, head=self.head, classifier=self.classifier,
                                              optimizer=self.optimizer, epoch=self.epoch,
                                              best_score=self.best_score, **parts)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(work_dir / "checkpoints"), 2)
        self.step_fn = tf.function(self._train_step, reduce_retracing=True)

    def restore(self) -> bool:
        """Resume from the latest checkpoint; False when there is none."""
        latest = self.manager.latest_checkpoint
        if latest is None:
            return False
        self.checkpoint.restore(latest).expect_partial()
        return True

    def _train_step(self, images, writer_ids, genuine):
        """One optimisation step on a batch; returns the three losses."""
        from siamese.augment import PROFILES, augment_batch

        tf = self.tf
        config = self.config
        if config.augment:
            images = augment_batch(images, PROFILES[config.augment_profile])
        size = tf.shape(writer_ids)[0]
        rows, cols = tf.meshgrid(tf.range(size), tf.range(size), indexing="ij")
        upper = rows < cols
        first, second = tf.boolean_mask(rows, upper), tf.boolean_mask(cols, upper)
        same = tf.equal(tf.gather(writer_ids, first), tf.gather(writer_ids, second))
        genuine_a, genuine_b = tf.gather(genuine, first), tf.gather(genuine, second)
        positive = same & genuine_a & genuine_b
        skilled = same & tf.not_equal(genuine_a, genuine_b)
        random = tf.logical_not(same) & (genuine_a | genuine_b)
        dense = self.head.get_layer("similarity")
        variables = self.twin.trainable_variables + self.head.trainable_variables + [self.classifier]
        with tf.GradientTape() as tape:
            embeddings = self.twin(images, training=True)
            emb_a, emb_b = tf.gather(embeddings, first), tf.gather(embeddings, second)
            logits = tf.squeeze(tf.matmul(tf.abs(emb_a - emb_b), dense.kernel) + dense.bias, -1)
            bce = tf.nn.sigmoid_cross_entropy_with_logits(tf.cast(positive, tf.float32), logits)
            pair_loss = (0.5 * _masked_mean(bce, positive) + 0.3 * _masked_mean(bce, skilled)
                         + 0.2 * _masked_mean(bce, random))
            cosine = tf.reduce_sum(emb_a * emb_b, axis=-1)
            contrastive = (_masked_mean(tf.nn.relu(0.75 - cosine), positive)
                           + _masked_mean(tf.nn.relu(cosine - 0.25), skilled | random))
            classes = writer_ids + tf.where(genuine, 0, tf.shape(self.classifier)[0] // 2)
            weights = tf.math.l2_normalize(self.classifier, axis=1)
            cos_class = tf.matmul(embeddings, weights, transpose_b=True)
            one_hot = tf.one_hot(classes, tf.shape(self.classifier)[0])
            class_logits = config.classifier_scale * (cos_class - config.classifier_margin * one_hot)
            class_loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(one_hot, class_logits))
            loss = (config.pair_weight * pair_loss + config.contrastive_weight * contrastive
                    + config.classifier_weight * class_loss)
        gradients = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        if self.averaged:
            self._update_average()
        return pair_loss, contrastive, class_loss

    def _update_average(self) -> None:
        """Move the averaged weights (BatchNorm statistics included) towards the current ones.

        The decay ramps up over the first steps, (1 + n) / (10 + n), so short runs average too.
        """
        tf = self.tf
        steps = tf.cast(self.optimizer.iterations, tf.float32)
        decay = tf.minimum(self.config.ema_decay, (1.0 + steps) / (10.0 + steps))
        pairs = zip(self.ema_twin.weights + self.ema_head.weights, self.twin.weights + self.head.weights)
        for average, current in pairs:
            average.assign(decay * average + (1.0 - decay) * current)

    def run_epoch(self, epoch: int, progress: bool) -> dict[str, float]:
        """Train one epoch (a fixed number of sampled batches); returns mean losses."""
        rng = np.random.default_rng(self.config.seed * 1000 + epoch)
        totals = np.zeros(3)
        bar = tqdm(range(self.config.steps_per_epoch), desc=f"epoch {epoch + 1}/{self.config.epochs}",
                   disable=not progress, leave=False)
        for step in bar:
            indices, writer_ids, genuine = self.sampler.sample(rng)
            images = canvases_to_batch(self.data.canvases[indices])
            losses = self.step_fn(images, writer_ids, genuine)
            totals += [float(value) for value in losses]
            if step % 10 == 0:
                bar.set_postfix(pair=f"{totals[0] / (step + 1):.3f}", cls=f"{totals[2] / (step + 1):.3f}")
        means = totals / max(1, self.config.steps_per_epoch)
        return {"pair_loss": means[0], "contrastive_loss": means[1], "classifier_loss": means[2]}

    def serving_model(self):
        """A SignatureModel over the current (averaged) weights, for validation and saving; over a copy
        of them when validation refits the head, so the refit never touches the trained head."""
        from siamese.model import SignatureModel
        from siamese.network import build_head, build_siamese, build_twin

        twin, head = (self.ema_twin, self.ema_head) if self.averaged else (self.twin, self.head)
        if self.config.select_after_head_fit:
            network = self.config.network
            twin_copy, head_copy = build_twin(network), build_head(network.embedding_dim)
            twin_copy.set_weights(twin.get_weights())
            head_copy.set_weights(head.get_weights())
            twin, head = twin_copy, head_copy
        return SignatureModel(build_siamese(twin, head), "training")


def _masked_mean(values, mask):
    """Mean of ``values`` where ``mask`` holds (0 when it never holds)."""
    import tensorflow as tf

    weights = tf.cast(mask, values.dtype)
    return tf.reduce_sum(values * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)


def train(
    data_dirs: Sequence[Path], out_path: Path, config: TrainConfig, work_dir: Path | None = None,
    resume: bool = False, progress: bool = True, max_minutes: float | None = None,
    cache_dir: Path | None = None, layouts: Sequence[str | None] | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Train, save the epoch ``config.keep`` names (best validation EER, or the last) to ``out_path``,
    refit its head and write its card; returns the card."""
    out_path = Path(out_path)
    work_dir = Path(work_dir) if work_dir else out_path.parent / f".{out_path.stem}-run"
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    data = load_training_data(data_dirs, config, cache_dir, layouts, progress)
    trainer = Trainer(data, config, work_dir)
    history_file = work_dir / "history.json"
    history: list[dict[str, Any]] = []
    elapsed_before = 0.0
    if resume and trainer.restore():
        state = json.loads(history_file.read_text()) if history_file.is_file() else {}
        history, elapsed_before = state.get("history", []), state.get("elapsed_seconds", 0.0)
    best_path, last_path = work_dir / "best.keras", work_dir / "last.keras"
    for epoch in range(int(trainer.epoch.numpy()), config.epochs):
        losses = trainer.run_epoch(epoch, progress)
        model = trainer.serving_model()
        validation = validate(model, data, config)
        score = mean_metric(validation, "eer_skilled") + mean_metric(validation, "eer_random")
        entry = {"epoch": epoch + 1, **losses, "validation": validation, "selection_score": score}
        history.append(entry)
        if np.isfinite(score) and score <= float(trainer.best_score.numpy()) or not best_path.exists():
            trainer.best_score.assign(score if np.isfinite(score) else 1e9)
            model.keras_model.save(best_path)
            entry["best"] = True
        model.keras_model.save(last_path)
        trainer.epoch.assign(epoch + 1)
        trainer.manager.save()
        elapsed = elapsed_before + time.monotonic() - started
        history_file.write_text(json.dumps({"history": history, "elapsed_seconds": elapsed}, indent=1))
        if progress:
            tqdm.write(f"epoch {epoch + 1}: pair {losses['pair_loss']:.3f}"
                       f" cls {losses['classifier_loss']:.3f}"
                       f" val eer skilled {mean_metric(validation, 'eer_skilled'):.3f}"
                       f" random {mean_metric(validation, 'eer_random'):.3f}")
        if max_minutes is not None and (time.monotonic() - started) / 60 >= max_minutes:
            break
    elapsed = elapsed_before + time.monotonic() - started
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if not last_path.exists():  # a finished run resumed from a work dir older than last.keras
        trainer.serving_model().keras_model.save(last_path)
    shutil.copyfile(best_path if config.keep == "best" else last_path, out_path)
    head_fit = refit_head(out_path, data, config.head, config.test_time_zooms)
    return write_training_card(out_path, config, data, history, elapsed, command, data_dirs, head_fit)


def embed_writers(model: Any, data: TrainingData, writers: Sequence[str]) -> np.ndarray:
    """Embeddings of the usable images of ``writers`` (other rows stay zero)."""
    wanted = set(writers)
    chosen = np.array([r.writer in wanted for r in data.records], dtype=bool)
    return embed_canvases(model, data.canvases, chosen & data.usable)


def validate(model: Any, data: TrainingData, config: TrainConfig) -> dict[str, Any]:
    """The validation results of an epoch's ``model``: with its head refitted first (in place) when
    ``config.select_after_head_fit``, so epochs are compared by the rule that would ship."""
    if config.select_after_head_fit:
        fit_head_on_training_writers(model, data, config.head)
    return evaluate_embeddings(model, data, data.split["validation"], config.references)


def load_training_writers(data_dirs: Sequence[Path], writers: Sequence[str], cache_dir: Path | None,
                          layout: str | None = None, progress: bool = True) -> TrainingData:
    """Those of ``writers`` found in ``data_dirs`` as the training split alone (to refit a head on).

    Their order is kept: the head's pair sampling follows it, so the card's training split in its
    order gives the head ``train`` fitted."""
    records, canvases, usable = load_writer_canvases(data_dirs, set(writers), cache_dir, layout, progress)
    present = {r.writer for r in records}
    found = [w for w in writers if w in present]
    return TrainingData(records, canvases, usable, {"train": found, "validation": [], "test": []})


def fit_head_on_training_writers(model: Any, data: TrainingData, config: HeadFitConfig,
                                 embeddings: np.ndarray | None = None) -> dict[str, Any]:
    """Refit ``model``'s head and normalisation on the training writers; returns the card section.
    ``embeddings``: ``embed_writers`` of the training writers, when done already (a head refit leaves
    them unchanged)."""
    if embeddings is None:
        embeddings = embed_writers(model, data, data.split["train"])
    genuine, forged = index_records(data.records, data.usable)
    return fit_head(model, embeddings, genuine, forged, data.split["train"], config)


def refit_head(model_path: Path, data: TrainingData, config: HeadFitConfig,
               zooms: Sequence[float] | None = None) -> dict[str, Any]:
    """Fit the head of the model at ``model_path`` on its training writers and save it in place;
    ``zooms``: the test-time zooms to embed with (default the card's)."""
    from siamese.model import SignatureModel

    model = SignatureModel.load(model_path)
    if zooms is not None:
        model.zooms = zooms
    section = fit_head_on_training_writers(model, data, config)
    model.save(model_path)
    return section


def write_training_card(out_path: Path, config: TrainConfig, data: TrainingData, history: list,
                        elapsed: float, command: str, data_dirs: Sequence[Path],
                        head_fit: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the saved model on validation and test writers and write its model card JSON."""
    from siamese.model import DEFAULT_THRESHOLD, SignatureModel, card_path_for
    from siamese.network import build_twin
    from siamese.scoring import ScoreNormalisation

    model = SignatureModel.load(out_path)
    model.threshold = DEFAULT_THRESHOLD  # not whatever an older card at out_path said
    model.zooms = config.test_time_zooms
    model.normalisation = ScoreNormalisation(**head_fit["score_normalisation"])
    twin = model.twin
    best_epoch = max((h["epoch"] for h in history if h.get("best")), default=len(history))
    card = {
        "name": out_path.stem,
        "threshold": model.threshold,
        "threshold_source": "default (not calibrated)",
        "command": command,
        "data": [str(Path(d)) for d in data_dirs],
        "datasets": {d: sum(1 for r in data.records if r.dataset == d)
                     for d in sorted({r.dataset for r in data.records})},
        "unusable_images": int((~data.usable).sum()),
        "split": data.split,
        "hyperparameters": config.to_dict(),
        "training_seconds": round(elapsed, 1),
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "kept_epoch": len(history) if config.keep == "last" else best_epoch,
        "parameters": int(twin.count_params() + model.head.count_params()),
        "twin_flops_per_image": count_flops(build_twin(config.network)),
        "history": [{k: v for k, v in h.items() if k != "validation"} | {
            "validation_eer_skilled": mean_metric(h["validation"], "eer_skilled"),
            "validation_eer_random": mean_metric(h["validation"], "eer_random")} for h in history],
        "head_fit": head_fit,
        "score_normalisation": head_fit["score_normalisation"],
        "test_time_zooms": list(model.zooms),
        "validation": evaluate_embeddings(model, data, data.split["validation"], config.references),
        "test": evaluate_embeddings(model, data, data.split["test"], config.references),
    }
    card_path_for(out_path).write_text(json.dumps(card, indent=1, default=float))
    return card


def count_flops(twin: Any) -> int:
    """Multiply-accumulate count x2 of the twin's convolutions and dense layers for one image."""
    import keras

    flops = 0
    for layer in twin.layers:
        if isinstance(layer, keras.layers.Conv2D):
            out_h, out_w, out_c = layer.output.shape[1:]
            k_h, k_w = layer.kernel_size
            in_c = layer.input.shape[-1]
            flops += 2 * out_h * out_w * out_c * k_h * k_w * in_c
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * int(np.prod(layer.kernel.shape))
    return int(flops)
