"""The LSTM forecaster (Keras): windowed history + calendar + seasonal lags -> H x quantiles.

TensorFlow is imported here only, and only when a model is built or loaded, so the rest of the
package (policy, simulator, CLI parsing) starts in milliseconds.

Inputs per origin: the last `window` buckets (value, calendar and, with a linear-AR base, that
AR's one-bucket-ahead error at each bucket) into an LSTM, plus, for every forecast step, the
same-time value one season earlier, the step's calendar and the base's forecast for it.

The network predicts a correction to a base forecast, scaled by the training p99, so an untrained
network starts at the base rather than at zero:
- "linear-ar": the direct linear AR of forecasters.py (12 lags plus the seasonal lags), fitted on
  the same training history, takes the level and the seasonal shape; the network learns what the
  AR leaves (its residuals: nonlinear and calendar effects, and from the AR's recent one-bucket
  errors, how wrong it is running today). Issue 16: forecasting the change from the last bucket,
  the LSTM only matched the AR on NASA and was far worse on the staged ramp, which the AR
  forecasts exactly.
- "last": the change from the last observed bucket (all format-1 models). On a bursty trace where
  the AR is worse than persistence (Azure `code`) this base trains the better network.
- "auto" (the default) picks one of the two on the training history alone: the AR is fitted on its
  first part and scored against persistence on the validation part early stopping watches; the
  AR becomes the base when its median forecast has the lower MAE there.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from autoglm_predictor.forecast.forecasters import (DEFAULT_QUANTILES, Forecaster, ForecastError, LinearAR, filled,
                                                   gather, observed)

FORMAT_VERSION = 2
BASES = ("auto", "linear-ar", "last")
# The base AR's recent lags: the same 12 as the linear-AR forecaster of the backtest and the ladder.
BASE_LAGS = 12


# Fewer complete (window, horizon) training samples than this make no fit worth early stopping.
MIN_WINDOWS = 20


@dataclass(frozen=True)
class LSTMSettings:
    horizon: int
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    window: int = 36
    seasons: tuple[int, ...] = ()
    units: int = 32
    dense: int = 64
    epochs: int = 40
    batch_size: int = 128
    patience: int = 5
    validation_fraction: float = 0.2
    learning_rate: float = 3e-3
    seed: int = 0
    threads: int = 2
    base: str = "auto"


@dataclass
class Scaler:
    """Everything besides the weights that a saved model needs to forecast again.

    `base` is the base in use ("linear-ar" or "last", "auto" resolved); `base_seasons` and
    `base_coefficients` are the fitted linear-AR base (empty with base "last"): per forecast step,
    the coefficients of [1, lags 1..12, the seasonal lags]. `base_choice` says why "auto" chose.
    """

    scale: float
    step_seconds: float
    trained_until: str = ""
    history: list[dict[str, float]] = field(default_factory=list)
    base: str = "last"
    base_choice: str = ""
    base_seasons: list[int] = field(default_factory=list)
    base_coefficients: list[list[float]] = field(default_factory=list)


# TensorFlow's C++ log level must be set before TensorFlow is imported (it is read once). At 2 an
# error line remained in every training: tensorflow-cpu 2.21's Python tf.data layer gives the
# ParallelMapDatasetV2 node (built by Keras 3 for numpy inputs) a `use_unbounded_threadpool`
# attribute its own C++ op definition lacks, and the runtime logs "E0000 ... NodeDef mentions
# attribute use_unbounded_threadpool ... Unknown attributes will be ignored" and carries on. A
# tf.data input without that map avoids it but trained measurably worse forecasters (issue 16),
# so the C++ log is quiet below FATAL instead: a failing op still raises a Python exception with
# its message. TF_CPP_MIN_LOG_LEVEL=0 in the environment brings everything back for debugging.
# That level does not reach one line: at import, tensorflow-cpu 2.21's port.cc logs "oneDNN custom
# operations are on ..." (twice, measured) before its C++ logging reads the
# level, and absl prefixes it with "WARNING: All log messages before absl::InitializeLog() is
# called are written to STDERR". TF_ENABLE_ONEDNN_OPTS=0 (the switch that message names) turns the
# oneDNN custom ops off, so nothing is logged at import at all (measured: `import tensorflow` then
# prints nothing; tests/unit/predictor/forecast/test_lstm.py checks it, and its training tests pass).
# This module is the only one importing TensorFlow, and only inside functions, so both values are
# set before any import in this process and inherited by any subprocess it starts.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def configure_tensorflow(seed: int, threads: int):
    """Seeded, deterministic, thread-capped TensorFlow (the machine is shared)."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised by an earlier model in this process; the first setting stands
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return tf


def calendar(index: pd.DatetimeIndex) -> np.ndarray:
    """Time-of-day and day-of-week on the unit circle: the daily and weekly cycles."""
    day = (index.hour * 3600 + index.minute * 60 + index.second).to_numpy() / 86400.0
    week = (index.day_of_week.to_numpy() + day) / 7.0
    return np.stack([np.sin(2 * np.pi * day), np.cos(2 * np.pi * day),
                     np.sin(2 * np.pi * week), np.cos(2 * np.pi * week)], axis=-1)


def pinball(quantiles: Sequence[float]):
    import tensorflow as tf

    q = tf.constant(quantiles, dtype=tf.float32)

    def loss(y_true, y_pred):
        error = y_true[:, :, None] - y_pred
        return tf.reduce_mean(tf.maximum(q * error, (q - 1.0) * error))

    return loss


class LSTMForecaster(Forecaster):
    name = "LSTM"

    def __init__(self, settings: LSTMSettings, progress: Callable[[str], None] | None = None) -> None:
        super().__init__(settings.horizon, settings.quantiles)
        if settings.window < 1:
            raise ForecastError(f"window must be >= 1, got {settings.window}")
        if settings.base not in BASES:
            raise ForecastError(f"base must be one of {', '.join(BASES)}, got {settings.base!r}")
        self.settings = settings
        self.progress = progress
        self.scaler: Scaler | None = None
        self._base: LinearAR | None = None
        self._model = None
        self._inference = None

    # -- features -------------------------------------------------------------------------

    def _base_forecasts(self, values: np.ndarray, index: pd.DatetimeIndex, first: int, last: int) -> np.ndarray:
        """The base's point forecasts: shape (len(values) + 1, horizon), row `o` the forecast standing
        before bucket `o`, for origins `first..last` (clipped to 1..len(values)); NaN elsewhere.

        The linear AR answers like its own forecaster (gaps filled, missing lags -> the last value,
        clamped to the bound); base "last" holds the last observed bucket flat.
        """
        out = np.full((len(values) + 1, self.horizon), np.nan)
        origins = np.arange(max(1, first), min(last, len(values)) + 1)
        if self._base is None:
            out[origins] = np.repeat(gather(values, origins - 1)[:, None], self.horizon, axis=1)
        elif origins.size:
            out[origins] = self._base.predict(pd.Series(values, index=index), origins)[:, :, 0]
        return out

    def _inputs(self, values: np.ndarray, index: pd.DatetimeIndex, origins: np.ndarray,
                step_seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sequence, per-step auxiliaries, base forecast (origins, horizon)), all scaled; NaN
        where data is missing."""
        s = self.settings
        scale = self.scaler.scale
        past = origins[:, None] - np.arange(s.window, 0, -1)
        future = origins[:, None] + np.arange(s.horizon)
        start = index[0]
        step = pd.Timedelta(seconds=step_seconds)
        cal = calendar(pd.date_range(start - step * s.window, periods=len(values) + s.window + s.horizon, freq=step))
        base = (self._base_forecasts(values, index, int(origins.min()) - s.window, int(origins.max())) if origins.size
                else np.empty((len(values) + 1, s.horizon)))
        channels = [gather(values, past)[:, :, None] / scale]
        if self._base is not None:  # the AR's one-bucket-ahead error at each past bucket
            channels.append(((gather(values, past) - gather(base[:, 0], past)) / scale)[:, :, None])
        sequence = np.concatenate([*channels, cal[past + s.window]], axis=-1)
        last = gather(values, origins - 1)
        seasonal = [gather(values, future - season) for season in s.seasons]
        seasonal = [np.where(np.isnan(lag), last[:, None], lag) / scale for lag in seasonal]
        ahead = base[origins] / scale
        aux = np.concatenate([cal[future + s.window].reshape(len(origins), -1), *seasonal, ahead], axis=1)
        return sequence.astype(np.float32), aux.astype(np.float32), ahead

    def _build(self, sequence_features: int, aux_features: int):
        tf = configure_tensorflow(self.settings.seed, self.settings.threads)
        keras = tf.keras
        s = self.settings
        sequence = keras.Input((s.window, sequence_features), name="sequence")
        aux = keras.Input((aux_features,), name="aux")
        encoded = keras.layers.LSTM(s.units)(sequence)
        hidden = keras.layers.Dense(s.dense, activation="relu")(keras.layers.Concatenate()([encoded, aux]))
        # Zero output weights: training starts exactly at the base forecast.
        output = keras.layers.Reshape((s.horizon, len(self.quantiles)))(
            keras.layers.Dense(s.horizon * len(self.quantiles), kernel_initializer="zeros")(hidden))
        return keras.Model([sequence, aux], output)

    def _compile(self, learning_rate: float) -> None:
        import tensorflow as tf

        self._model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate), loss=pinball(self.quantiles))

    def _samples(self, history: pd.Series, origins: np.ndarray):
        """Training tensors for complete origins only (no gap in inputs or targets)."""
        values = history.to_numpy(dtype=float)
        sequence, aux, base = self._inputs(values, history.index, origins, self.scaler.step_seconds)
        target = gather(values, origins[:, None] + np.arange(self.horizon)) / self.scaler.scale - base
        complete = np.isfinite(sequence).all(axis=(1, 2)) & np.isfinite(aux).all(axis=1) & np.isfinite(target).all(axis=1)
        return sequence[complete], aux[complete], target[complete].astype(np.float32)

    def _origins(self, length: int) -> np.ndarray:
        first = max([self.settings.window, *self.settings.seasons])
        return np.arange(first, length - self.horizon + 1)

    # -- interface ------------------------------------------------------------------------

    def fit(self, history: pd.Series) -> None:
        s = self.settings
        history = observed(history)
        step_seconds = _regular_step(history)
        values = history.to_numpy()
        p99 = float(np.nanpercentile(values, 99)) if np.isfinite(values).any() else 0.0
        self.scaler = Scaler(scale=p99 if p99 > 0 else 1.0, step_seconds=step_seconds,
                             trained_until=str(history.index[-1]))
        self._base = None
        self.scaler.base, self.scaler.base_choice = (choose_base(history, s.horizon, s.seasons, s.validation_fraction)
                                                     if s.base == "auto" else (s.base, "set"))
        if self.scaler.base == "linear-ar":  # a refused fit (too few rows, explosive) is the LSTM's refusal too
            self._base = LinearAR(s.horizon, lags=BASE_LAGS, seasons=s.seasons, quantiles=(0.5,))
            self._base.fit(history)
            self.scaler.base_seasons = list(self._base.seasons)
            self.scaler.base_coefficients = [c.tolist() for c in self._base._coefficients]
        if self.progress:
            self.progress(f"base: {self.scaler.base} ({self.scaler.base_choice})")
        sequence, aux, target = self._samples(history, self._origins(len(history)))
        if len(target) < MIN_WINDOWS:
            raise ForecastError(f"only {len(target)} complete training windows; need {MIN_WINDOWS} (a longer history)")
        self._model, self._inference = self._build(sequence.shape[-1], aux.shape[-1]), None
        self._compile(s.learning_rate)
        cut = int(len(target) * (1 - s.validation_fraction))
        self._train([sequence[:cut], aux[:cut]], target[:cut], ([sequence[cut:], aux[cut:]], target[cut:]), s.epochs)

    def update(self, history: pd.Series, recent: int, replay_fraction: float = 0.25, epochs: int = 3) -> None:
        """Fine-tune on the last `recent` windows plus a seeded sample of older ones.

        The replay sample keeps the weekly and daily structure learned earlier from being
        overwritten by the most recent days (catastrophic forgetting); the scaler is kept so
        forecasts stay comparable across updates.
        """
        if self._model is None or self.scaler is None:
            raise ForecastError("fit or load the LSTM before updating it")
        history = observed(history)
        origins = self._origins(len(history))
        newest, older = origins[-recent:], origins[:-recent]
        rng = np.random.default_rng(self.settings.seed + len(self.scaler.history) + 1)
        replay = rng.choice(older, size=min(len(older), int(recent * replay_fraction)), replace=False)
        sequence, aux, target = self._samples(history, np.concatenate([replay, newest]))
        if len(target) == 0:
            raise ForecastError("no complete windows to update on")
        self._compile(self.settings.learning_rate / 3)
        self._train([sequence, aux], target, None, epochs)
        self.scaler.trained_until = str(history.index[-1])

    def _train(self, inputs, target, validation, epochs: int) -> None:
        import tensorflow as tf

        keras = tf.keras
        progress = self.progress
        started = time.perf_counter()
        records = self.scaler.history

        class Report(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                records.append({k: float(v) for k, v in logs.items()})
                if progress:
                    val = f" val_loss {logs['val_loss']:.4f}" if "val_loss" in logs else ""
                    progress(f"epoch {epoch + 1}/{epochs} loss {logs.get('loss', float('nan')):.4f}{val} "
                             f"({time.perf_counter() - started:.1f} s since training started)")

        callbacks = [Report()]
        if validation is not None:
            callbacks.append(keras.callbacks.EarlyStopping(patience=self.settings.patience, restore_best_weights=True))
        self._model.fit(inputs, target, validation_data=validation, epochs=epochs,
                        batch_size=self.settings.batch_size, shuffle=True, verbose=0, callbacks=callbacks)

    def _predict(self, history: pd.Series, positions: np.ndarray) -> np.ndarray:
        if self._model is None or self.scaler is None:
            raise ForecastError("the LSTM is not trained or loaded")
        values = filled(history.to_numpy())
        sequence, aux, base = self._inputs(values, history.index, positions, self.scaler.step_seconds)
        # Windows reaching before the history start repeat its first value (and the base's error there is 0).
        sequence[:, :, 0] = np.where(np.isnan(sequence[:, :, 0]), values[0] / self.scaler.scale, sequence[:, :, 0])
        sequence = np.nan_to_num(sequence, nan=0.0)
        delta = self._compiled()(sequence, aux).numpy()
        return (base[:, :, None] + np.sort(delta, axis=-1)) * self.scaler.scale

    def _compiled(self):
        """A traced inference graph: eager Keras steps the LSTM in Python, ~10x slower per call."""
        if self._inference is None:
            import tensorflow as tf

            s = self.settings
            model = self._model
            signature = [tf.TensorSpec((None, s.window, None), tf.float32), tf.TensorSpec((None, None), tf.float32)]
            self._inference = tf.function(lambda sequence, aux: model([sequence, aux], training=False),
                                          input_signature=signature)
        return self._inference

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write `<name>.keras` (weights) and `<name>.json` (settings, scaler, metadata)."""
        if self._model is None or self.scaler is None:
            raise ForecastError("nothing to save: the LSTM is not trained")
        path = Path(path)
        if path.suffix != ".keras":
            raise ForecastError(f"model path must end in .keras, got {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._model.save(path)
        meta = {"format": FORMAT_VERSION, "settings": asdict(self.settings), "scaler": asdict(self.scaler)}
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path, progress: Callable[[str], None] | None = None) -> LSTMForecaster:
        path = Path(path)
        meta_path = path.with_suffix(".json")
        if not path.is_file() or not meta_path.is_file():
            raise ForecastError(f"need both {path} and {meta_path}")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") not in (1, FORMAT_VERSION):
            raise ForecastError(f"{meta_path}: unsupported format {meta.get('format')}")
        settings = meta["settings"]
        settings = LSTMSettings(**{"base": "last", **settings, "quantiles": tuple(settings["quantiles"]),
                                   "seasons": tuple(settings["seasons"])})  # format 1: base "last"
        forecaster = cls(settings, progress)
        forecaster.scaler = Scaler(**meta["scaler"])
        if forecaster.scaler.base == "linear-ar":
            forecaster._base = LinearAR.from_coefficients(settings.horizon, BASE_LAGS, forecaster.scaler.base_seasons,
                                                          forecaster.scaler.base_coefficients, quantiles=(0.5,))
        tf = configure_tensorflow(settings.seed, settings.threads)
        forecaster._model = tf.keras.models.load_model(path, compile=False)
        return forecaster


def choose_base(history: pd.Series, horizon: int, seasons: Sequence[int], validation_fraction: float) -> tuple[str, str]:
    """("linear-ar" or "last", why): the base "auto" resolves to, from the training history only.

    The AR is fitted on the first 1 - `validation_fraction` of the history (the part the network
    trains on) and both bases forecast every origin of the rest; the lower mean absolute error over
    all horizon steps wins, ties to the AR. An AR refused on that part (ForecastError) loses.
    """
    values = history.to_numpy(dtype=float)
    cut = int(len(values) * (1 - validation_fraction))
    origins = np.arange(cut, len(values) - horizon + 1)
    if origins.size == 0:
        return "last", "no validation origins"
    actual = gather(values, origins[:, None] + np.arange(horizon))
    last = np.repeat(gather(filled(values), origins - 1)[:, None], horizon, axis=1)
    try:
        ar = LinearAR(horizon, lags=BASE_LAGS, seasons=seasons, quantiles=(0.5,))
        ar.fit(history.iloc[:cut])
        point = ar.predict(history, origins)[:, :, 0]
    except ForecastError as error:
        return "last", f"the AR refused the first part: {error.reason}"
    ar_mae, last_mae = np.nanmean(np.abs(point - actual)), np.nanmean(np.abs(last - actual))
    why = f"validation MAE linear AR {ar_mae:.4g} vs last bucket {last_mae:.4g}"
    return ("linear-ar", why) if ar_mae <= last_mae else ("last", why)


def _regular_step(history: pd.Series) -> float:
    if len(history) < 2:
        raise ForecastError("history needs at least two buckets")
    steps = pd.Series(history.index).diff().dropna()
    if steps.nunique() != 1 or steps.iloc[0] <= pd.Timedelta(0):
        raise ForecastError("history must be regularly spaced (resample it first)")
    return float(steps.iloc[0].total_seconds())
