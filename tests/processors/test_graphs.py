"""Processor graphs declared in config: the standard graph as a declaration, routing
processors against magenta's formulas, errors that name the node, and the documented example
graphs training on procedural notes."""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ddsp_jax.cli import main
from ddsp_jax.data.procedural import render_notes
from ddsp_jax.inference import model_for_length, synthesize
from ddsp_jax.models import Autoencoder, SavedModel, load_model, save_model
from ddsp_jax.models.autoencoder import render
from ddsp_jax.processors import (
    Add,
    Crop,
    CropConfig,
    DeclaredGraph,
    GraphConfig,
    Mix,
    NodeConfig,
    ProcessorGraph,
    ProcessorGraphConfig,
    standard_declaration,
)
from ddsp_jax.serialization import from_dict, to_dict
from ddsp_jax.streaming import check_live_model
from ddsp_jax.training.config import TrainConfig, load
from tiny import tiny_config, train_and_score

GRAPHS = Path(__file__).parents[2] / "docs" / "graphs"
STANDARD_CONTROLS = ("amplitudes", "harmonic_distribution", "noise_magnitudes")


def raw_controls(rng, n_harmonics: int, batch: int = 2, n_frames: int = 10) -> dict:
    shapes = {
        "amplitudes": 1,
        "harmonic_distribution": n_harmonics,
        "noise_magnitudes": 65,
    }
    controls = {
        name: jnp.asarray(rng.normal(size=(batch, n_frames, size)), jnp.float32)
        for name, size in shapes.items()
    }
    return {**controls, "f0_hz": jnp.full((batch, n_frames, 1), 220.0)}


@pytest.mark.parametrize("reverb", ["ir", "exp_decay", "none"])
def test_the_standard_graph_declared_renders_what_processor_graph_renders(rng, reverb):
    config = ProcessorGraphConfig(n_samples=1600, n_harmonics=8, reverb=reverb, reverb_length=400)
    standard = ProcessorGraph(config, rngs=nnx.Rngs(0))
    declared = DeclaredGraph(
        standard_declaration(config), 16000, 1600, STANDARD_CONTROLS, rngs=nnx.Rngs(0)
    )
    controls = raw_controls(rng, 8)
    key = jax.random.key(3)
    expected, signals = standard(controls, key=key), declared(controls, key=key)
    for name in ("harmonic", "noise", "dry", "audio"):
        np.testing.assert_array_equal(signals[name], expected[name])


def test_a_declaration_survives_json_and_equal_declarations_hash_alike():
    declaration = standard_declaration(ProcessorGraphConfig())
    again = from_dict(GraphConfig, to_dict(declaration))
    assert again == declaration and hash(again) == hash(declaration)


def test_add_mix_and_crop_follow_magentas_formulas(rng):
    one, two = (jnp.asarray(rng.normal(size=(1, 40)), jnp.float32) for _ in range(2))
    np.testing.assert_array_equal(Add()({"signal_one": one, "signal_two": two}), one + two)
    raw_level = jnp.full((1, 5, 1), 0.3)
    m = 1.0 / (1.0 + np.exp(-0.3))  # sigmoid, constant so upsampling keeps it.
    mixed = Mix()({"signal_one": one, "signal_two": two, "mix_level": raw_level})
    expected = np.sqrt(m) * one + (1.0 - np.sqrt(1.0 - m)) * two
    np.testing.assert_allclose(mixed, expected, rtol=1e-6, atol=1e-6)
    audio = jnp.arange(12.0)[None]
    cropped = {
        where: Crop(CropConfig(frame_size=5, crop_location=where))({"audio": audio})
        for where in ("front", "center", "back")
    }  # frame_size 5 removes 4 samples, as magenta's.
    np.testing.assert_array_equal(cropped["front"][0], np.arange(4.0, 12.0))
    np.testing.assert_array_equal(cropped["center"][0], np.arange(2.0, 10.0))
    np.testing.assert_array_equal(cropped["back"][0], np.arange(0.0, 8.0))


def node(name: str, processor: str, *inputs: str, **options) -> NodeConfig:
    return NodeConfig(name, processor, tuple(inputs), options)


def declare(*nodes: NodeConfig) -> GraphConfig:
    return GraphConfig(nodes=nodes)


def build(graph: GraphConfig, controls=STANDARD_CONTROLS) -> DeclaredGraph:
    return DeclaredGraph(graph, 16000, 1600, controls, rngs=nnx.Rngs(0))


HARMONIC = node("harmonic", "harmonic")
NOISE = node("noise", "filtered_noise")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: node("echo", "delay"), "graph node 'echo': unknown processor 'delay'"),
        (lambda: declare(HARMONIC, HARMONIC), "repeated: ['harmonic']"),
        (lambda: GraphConfig((HARMONIC,), output="wet"), "output 'wet' is not a node"),
        (lambda: node("audio", "add"), "graph node 'audio': the name is reserved"),
        (
            lambda: build(declare(HARMONIC, NOISE, node("dry", "add", "harmonic", "nois"))),
            "graph node 'dry' (add): input 'nois' is not a decoder output",
        ),
        (
            lambda: build(declare(HARMONIC, NOISE, node("dry", "add", "harmonic"))),
            "graph node 'dry' (add) takes 2 inputs (signal_one, signal_two); got ['harmonic']",
        ),
        (
            lambda: build(declare(HARMONIC, node("dry", "add", "harmonic", "harmonic"))),
            "decoder output 'noise_magnitudes' is not read by any graph node",
        ),
        (
            lambda: build(declare(HARMONIC, NOISE, node("wet", "reverb", "noise"))),
            "graph node 'harmonic' is not read by any graph node",
        ),
        (
            lambda: build(declare(node("wet", "reverb"))),
            "graph node 'wet' (reverb) is the first node",
        ),
        (
            lambda: build(declare(HARMONIC, NOISE, node("dry", "add", "harmonic", "noise", x=1))),
            "graph node 'dry' (add) takes no options",
        ),
        (
            lambda: build(
                declare(
                    HARMONIC,
                    NOISE,
                    node("dry", "add", "harmonic", "noise"),
                    node("wet", "reverb", reverb_lenght=10),
                )
            ),
            "graph node 'wet' (reverb) options: unknown ReverbConfig settings ['reverb_lenght']",
        ),
        (
            lambda: build(
                declare(
                    HARMONIC,
                    NOISE,
                    node("dry", "add", "harmonic", "noise"),
                    node("wet", "reverb", reverb_length=-1),
                )
            ),
            "graph node 'wet' (reverb) options: reverb_length must be",
        ),
    ],
)
def test_a_bad_declaration_is_refused_naming_the_node(make, message):
    with pytest.raises(ValueError) as error:
        make()
    assert message in str(error.value)


def model_with(graph: GraphConfig, splits: tuple = ()) -> TrainConfig:
    config = tiny_config()
    decoder = config.model.decoder
    if splits:
        decoder = dataclasses.replace(decoder, output_splits=splits)
    model = dataclasses.replace(config.model, decoder=decoder, graph=graph)
    return dataclasses.replace(config, model=model)


def test_a_processor_refusing_its_inputs_is_named_when_the_model_is_configured():
    mixed = node("mixed", "mix", "harmonic", "noise", "harmonic")  # A level must be per frame.
    with pytest.raises(ValueError, match="graph node 'mixed' \\(mix\\): mix_level"):
        model_with(declare(HARMONIC, NOISE, mixed))


def test_an_output_of_the_wrong_length_is_refused_naming_the_output_node():
    graph = declare(HARMONIC, NOISE, node("dry", "add", "harmonic", "noise"), node("cut", "crop"))
    with pytest.raises(ValueError, match="output node 'cut' makes audio of shape \\[1, 1536\\]"):
        model_with(graph)


def test_a_config_file_with_a_bad_graph_gives_one_line(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(
        (GRAPHS / "chorus_reverb.toml").read_text().replace('"delay_phase"]', '"delay_phaze"]')
    )
    code = main(["train", "--config", str(path), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "graph node 'chorus' (mod_delay): input 'delay_phaze'" in err


def test_a_model_with_a_declared_graph_renders_offline_only():
    config = model_with(standard_declaration(tiny_config().model.synth))
    saved = SavedModel(Autoencoder(config.model, rngs=nnx.Rngs(0)), 250, None, 0, None)
    with pytest.raises(ValueError, match=r"declares its own \(model.graph\)"):
        check_live_model(saved, "live transfer")
    with pytest.raises(ValueError, match="engine datarax synthesises the standard graph"):
        dataclasses.replace(config, engine="datarax")


def notes(n: int, seed: int) -> dict[str, np.ndarray]:
    data = render_notes(n, seed, seconds=0.1, n_harmonics=8, room=False)
    return {k: data[k] for k in ("audio", "f0_hz", "loudness_db")}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["chorus_reverb", "sinusoidal_fir"])
def test_each_documented_graph_trains_on_procedural_notes(tmp_path, name):
    config = load(GRAPHS / f"{name}.toml", base=tiny_config(steps=30, checkpoint_every=30))
    held_out = notes(4, seed=1)
    before, after, trainer = train_and_score(config, tmp_path / "run", notes(8, seed=0), held_out)
    assert after < 0.6 * before
    signals = trainer.model()(
        {k: jnp.asarray(v[:1]) for k, v in held_out.items()}, key=jax.random.key(0)
    )
    assert signals["audio_synth"].shape == (1, 1600)
    assert np.all(np.isfinite(signals["audio_synth"]))


def test_a_saved_model_with_a_declared_graph_loads_and_synthesises_any_length(tmp_path):
    config = load(GRAPHS / "chorus_reverb.toml", base=tiny_config())
    model = Autoencoder(config.model, rngs=nnx.Rngs(0))
    save_model(SavedModel(model, 250, None, 0, None), tmp_path / "model")
    saved = load_model(tmp_path / "model")
    assert saved.config.graph == config.model.graph
    f0, loudness = np.full(130, 330.0, np.float32), np.full(130, -30.0, np.float32)
    audio = synthesize(saved, f0, loudness)
    whole = render(model_for_length(saved, 130 * 64), f0[None], loudness[None])[0]
    assert audio.shape == (130 * 64,)
    np.testing.assert_array_equal(audio, whole)
