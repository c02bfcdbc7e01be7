"""The datarax operators and training engine (run in the datarax environment)."""

import json

import numpy as np
import pytest

datarax = pytest.importorskip("datarax", reason="needs the datarax extra")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from datarax.core.element_batch import Batch  # noqa: E402
from datarax.operators import CompositionStrategy  # noqa: E402
from flax import nnx  # noqa: E402

from ddsp_jax.cli import main  # noqa: E402
from ddsp_jax.data.procedural import render_notes  # noqa: E402
from ddsp_jax.demo import FIGURES, SUMMARY_FILE  # noqa: E402
from ddsp_jax.inference import synthesize  # noqa: E402
from ddsp_jax.integrations.datarax import (  # noqa: E402
    DataraxAutoencoder,
    FilteredNoiseOperator,
    FilteredNoiseOperatorConfig,
    HarmonicOperator,
    HarmonicOperatorConfig,
    PipelineSource,
    ReverbOperator,
    ReverbOperatorConfig,
    datarax_graph,
    noise_key,
)
from ddsp_jax.losses import multi_scale_spectral_loss  # noqa: E402
from ddsp_jax.models import Autoencoder, preprocess  # noqa: E402
from ddsp_jax.models.saved import load_model  # noqa: E402
from ddsp_jax.processors import ProcessorGraph, ProcessorGraphConfig  # noqa: E402
from ddsp_jax.training import Trainer, read_metrics  # noqa: E402
from ddsp_jax.training.examples import batch_source  # noqa: E402
from ddsp_jax.training.export import export_model  # noqa: E402
from tiny import tiny_config  # noqa: E402

N_FRAMES, N_SAMPLES = 100, 6400


def record(rng: np.random.Generator) -> dict[str, jax.Array]:
    return {
        "f0_hz": jnp.full((N_FRAMES, 1), 330.0),
        "amplitudes": jnp.asarray(rng.normal(size=(N_FRAMES, 1)), jnp.float32),
        "harmonic_distribution": jnp.asarray(rng.normal(size=(N_FRAMES, 40)), jnp.float32),
        "noise_magnitudes": jnp.asarray(rng.normal(size=(N_FRAMES, 65)), jnp.float32),
        "audio": jnp.zeros((N_SAMPLES,)),
    }


@pytest.mark.parametrize("reverb", ["ir", "exp_decay", "none"])
def test_datarax_graph_equals_plain_graph(reverb):
    config = ProcessorGraphConfig(
        n_samples=N_SAMPLES, n_harmonics=40, reverb=reverb, reverb_length=1600
    )
    graph = ProcessorGraph(config, rngs=nnx.Rngs(0))
    operator = datarax_graph(graph, rngs=nnx.Rngs(1))
    expected = (
        CompositionStrategy.WEIGHTED_PARALLEL
        if reverb == "none"
        else CompositionStrategy.SEQUENTIAL
    )
    assert operator.config.strategy == expected
    data = record(np.random.default_rng(0))
    key = jax.random.key(7)
    out, _, _ = operator.apply(data, {}, None, key=key)
    controls = {name: value[None] for name, value in data.items()}
    plain = graph(controls, key=noise_key(key, has_reverb=reverb != "none"))["audio"][0]
    np.testing.assert_allclose(out["audio"], plain, atol=1e-6)
    assert float(jnp.abs(plain).max()) > 0.1


def test_batched_call_and_gradients_through_shared_parameters():
    config = ProcessorGraphConfig(n_samples=N_SAMPLES, n_harmonics=40, reverb_length=1600)
    graph = ProcessorGraph(config, rngs=nnx.Rngs(0))
    operator = datarax_graph(graph, rngs=nnx.Rngs(1))
    rng = np.random.default_rng(1)
    records = [record(rng) for _ in range(3)]
    batch = Batch.from_parts(
        data={name: jnp.stack([r[name] for r in records]) for name in records[0]}, states={}
    )
    audio = operator(batch).get_data()["audio"]
    assert audio.shape == (3, N_SAMPLES) and np.all(np.isfinite(audio))
    target = jnp.asarray(rng.normal(size=(3, N_SAMPLES)) * 0.1, jnp.float32)

    def loss_fn(operator):
        return multi_scale_spectral_loss(target, operator(batch).get_data()["audio"])

    grads = nnx.grad(loss_fn)(operator)
    ir_grad = grads.operators[1].processor.impulse_response[...]
    assert np.all(np.isfinite(ir_grad)) and np.abs(ir_grad).max() > 0
    # The operator wraps the plain graph's own Param.
    assert operator.operators[1].processor is graph.reverb


def test_single_operators_build_their_own_processors():
    harmonic = HarmonicOperator(HarmonicOperatorConfig())
    noise = FilteredNoiseOperator(FilteredNoiseOperatorConfig(), rngs=nnx.Rngs(0))
    reverb = ReverbOperator(ReverbOperatorConfig(), rngs=nnx.Rngs(0))
    assert not harmonic.config.stochastic and noise.config.stochastic
    assert reverb.processor.impulse_response.shape == (48000,)
    with pytest.raises(ValueError, match="rngs"):
        ReverbOperator(ReverbOperatorConfig())


def test_datarax_autoencoder_synthesises_like_its_plain_graph_for_the_same_record_keys():
    config = tiny_config()
    model = DataraxAutoencoder(config.model, rngs=nnx.Rngs(0))
    batch = {
        "f0_hz": jnp.linspace(150.0, 300.0, 2 * config.n_frames).reshape(2, config.n_frames),
        "loudness_db": jnp.full((2, config.n_frames), -20.0),
    }
    key = jax.random.key(3)
    audio = model(batch, key=key)["audio_synth"]
    features = preprocess(batch["f0_hz"], batch["loudness_db"])
    controls = {**model.decoder(features), "f0_hz": features["f0_hz"]}
    for i, record_key in enumerate(jax.random.split(key, 2)):
        one = {name: value[i : i + 1] for name, value in controls.items()}
        expected = model.processor_graph(one, key=noise_key(record_key))["audio"][0]
        np.testing.assert_allclose(audio[i], expected, atol=1e-6)
        assert float(jnp.abs(expected).max()) > 0
    assert model.operators.operators[1].processor is model.processor_graph.reverb


def test_datarax_engine_trains_and_resumes_exactly(tmp_path):
    config = tiny_config(steps=6, checkpoint_every=3, engine="datarax")
    notes = render_notes(5, 0, seconds=0.1, n_harmonics=8, room=False)
    examples = {k: notes[k] for k in ("audio", "f0_hz", "loudness_db")}

    straight = Trainer(config, tmp_path / "straight")
    straight.start(resume=False)
    source = batch_source(examples, 2, 0, config.engine)
    assert isinstance(source, PipelineSource)
    assert isinstance(straight.model(), DataraxAutoencoder)
    losses = [h["loss"] for h in straight.fit(source, progress=False)]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]

    first = Trainer(config, tmp_path / "resumed")
    first.start(resume=False)
    first.fit(batch_source(examples, 2, 0, config.engine), until_step=3, progress=False)
    first.close()
    resumed = Trainer(config, tmp_path / "resumed")
    resumed.start(resume=True)
    fresh = batch_source(examples, 2, 0, config.engine)
    assert resumed.restore(fresh) == 3
    resumed.fit(fresh, progress=False)
    assert [m["loss"] for m in read_metrics(tmp_path / "resumed")] == losses

    # Its model exports as a plain model folder that synthesises what the run's model does.
    export_model(tmp_path / "straight", tmp_path / "model")
    saved = load_model(tmp_path / "model")
    assert type(saved.model) is Autoencoder and saved.step == 6
    batch = {k: examples[k][:1] for k in ("f0_hz", "loudness_db")}
    expected = straight.model().processor_graph(
        {**straight.model().decoder(preprocess(**batch)), "f0_hz": batch["f0_hz"][..., None]},
        key=jax.random.key(0),
    )["audio"][0]
    audio = synthesize(saved, batch["f0_hz"][0], batch["loudness_db"][0])
    np.testing.assert_allclose(audio, np.asarray(expected), atol=1e-6)


def test_demo_on_the_datarax_engine_writes_every_promised_file(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--engine", "datarax", "--out", str(out), "--steps", "3"]) == 0
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert summary["engine"] == "datarax" and summary["steps"] == 3
    assert np.isfinite(summary["loss_trained"]) and np.isfinite(summary["loss_untrained"])
    for name in (*FIGURES, *summary["wavs"]):
        assert (out / name).stat().st_size > 0, name


def test_our_crepe_and_dataraxs_give_the_same_activations_for_the_same_weights():
    from datarax.operators.modality.audio.crepe_model import CrepeModel

    from ddsp_jax.features.f0 import load_crepe
    from ddsp_jax.features.torch_weights import WeightsError

    try:
        ours = load_crepe("tiny")
    except WeightsError as error:
        pytest.skip(str(error))
    theirs = CrepeModel("tiny", rngs=nnx.Rngs(0))
    for conv, norm, their_conv, their_norm in zip(
        ours.convs, ours.norms, theirs.conv_layers, theirs.batch_norms, strict=True
    ):
        their_conv.kernel[...], their_conv.bias[...] = conv.kernel[...], conv.bias[...]
        for name in ("scale", "bias", "mean", "var"):
            getattr(their_norm, name)[...] = getattr(norm, name)[...]
    theirs.classifier.kernel[...] = ours.classifier.kernel[...]
    theirs.classifier.bias[...] = ours.classifier.bias[...]

    rng = np.random.default_rng(0)
    t = np.arange(1024) / 16000
    frames = np.stack([np.sin(2 * np.pi * f * t) for f in (110.0, 330.0, 990.0)])
    frames = (frames + 0.05 * rng.normal(size=frames.shape)).astype(np.float32)
    normalised = (frames - frames.mean(-1, keepdims=True)) / frames.std(-1, keepdims=True)
    expected = theirs(jnp.asarray(normalised)[..., None], use_running_average=True)
    np.testing.assert_allclose(ours(jnp.asarray(frames)), expected, atol=1e-5)
    assert float(jnp.max(expected)) > 0.5  # Confident on clean tones: real weights in use.


def test_every_other_processor_runs_as_an_operator_like_the_plain_call():
    from ddsp_jax.integrations.datarax import processor_operator
    from ddsp_jax.processors import (
        FilteredNoiseReverb,
        FilteredNoiseReverbConfig,
        FIRFilter,
        FIRFilterConfig,
        ModDelay,
        ModDelayConfig,
        Noise,
        NoiseConfig,
        SincFilter,
        SincFilterConfig,
        Sinusoidal,
        SinusoidalConfig,
        TensorToAudio,
        Wavetable,
        WavetableConfig,
    )

    rng = np.random.default_rng(2)
    frames = lambda *shape: jnp.asarray(rng.normal(size=(N_FRAMES, *shape)), jnp.float32)  # noqa: E731
    record = {
        "audio": jnp.asarray(rng.normal(size=N_SAMPLES), jnp.float32),
        "samples": jnp.asarray(rng.normal(size=N_SAMPLES), jnp.float32),
        "amplitudes": frames(1),
        "frequencies": frames(1),
        "wavetables": frames(64),
        "f0_hz": jnp.full((N_FRAMES, 1), 220.0),
        "magnitudes": frames(16),
        "cutoff": frames(1),
        "gain": frames(1),
        "phase": frames(1),
    }
    processors = [
        Sinusoidal(SinusoidalConfig(n_samples=N_SAMPLES)),
        Wavetable(WavetableConfig(n_samples=N_SAMPLES)),
        Noise(NoiseConfig(n_samples=N_SAMPLES)),
        TensorToAudio(),
        FIRFilter(FIRFilterConfig(window_size=30)),
        SincFilter(SincFilterConfig(window_size=64)),
        ModDelay(ModDelayConfig()),
        FilteredNoiseReverb(FilteredNoiseReverbConfig(reverb_length=800), rngs=nnx.Rngs(0)),
    ]
    key = jax.random.key(5)
    for processor in processors:
        operator = processor_operator(processor, field_key="out", rngs=nnx.Rngs(1))
        assert operator.stochastic == isinstance(processor, Noise)
        out, _, _ = operator.apply(record, {}, None, key=key)
        controls = {name: value[None] for name, value in record.items()}
        plain = processor(controls, key=key if processor.draws_noise else None)[0]
        np.testing.assert_array_equal(out["out"], plain)
        np.testing.assert_array_equal(out["audio"], record["audio"])  # Others kept.
        assert float(jnp.abs(plain).max()) > 0.0, type(processor).__name__
