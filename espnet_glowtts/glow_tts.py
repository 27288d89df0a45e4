# Copyright 2026 The espnet-glowtts authors
#  Apache 2.0  (http://www.apache.org/licenses/LICENSE-2.0)

"""Glow-TTS (Kim et al., NeurIPS 2020) as an ESPnet2 TTS model.

Paper: Kim et al., "Glow-TTS: A Generative Flow for Text-to-Speech via Monotonic
Alignment Search", NeurIPS 2020. Facts (architecture, defaults, losses) follow the
authors' implementation, github.com/jaywalnut310/glow-tts (``models.FlowGenerator``);
ESPnet's ``AbsTTS`` interface and ``force_gatherable`` are reused.
"""

import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.tts.abs_tts import AbsTTS
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from typeguard import typechecked

from espnet_glowtts.duration_predictor import DurationPredictor
from espnet_glowtts.encoder import TextEncoder
from espnet_glowtts.flows import FlowDecoder
from espnet_glowtts.mas import log_likelihood, maximum_path
from espnet_glowtts.tensor_utils import (
    fold_blank_durations,
    intersperse_blank,
    path_from_durations,
    sequence_mask,
)

DURATION_TARGETS = ("log", "log1p")


class GlowTTS(AbsTTS):
    """Glow-TTS: a flow decoder trained by maximum likelihood with Monotonic Alignment Search.

    The defaults are the authors' base configuration (28.6M parameters at ``odim=80``), with
    blanks inserted between tokens as in their best configuration. The text encoder predicts
    a Gaussian prior per token; MAS finds the monotonic alignment of the flow's latents to
    those Gaussians; the duration predictor learns the aligned durations.

    Args:
        idim (int): Vocabulary size (ESPnet's token list, ``<blank>`` = 0).
        odim (int): Feature dimension (mel bins).
        hidden_channels (int): Encoder width.
        filter_channels (int): Encoder feed-forward width.
        num_heads (int): Encoder attention heads.
        num_encoder_layers (int): Encoder transformer layers.
        encoder_kernel_size (int): Encoder feed-forward conv kernel.
        encoder_dropout (float): Encoder dropout.
        window_size (int): Relative-position window of the attention.
        use_prenet (bool): Use the encoder's conv prenet.
        mean_only (bool): Fix the prior log-std at 0 (else predict it).
        duration_filter_channels (int): Duration predictor width.
        duration_kernel_size (int): Duration predictor kernel.
        duration_dropout (float): Duration predictor dropout.
        duration_target (str): "log" (log d, the paper) or "log1p" (log(1 + d)).
        decoder_hidden_channels (int): WaveNet width in the couplings.
        decoder_kernel_size (int): WaveNet kernel.
        decoder_dilation_rate (int): WaveNet dilation growth.
        num_flow_blocks (int): Flow blocks in the decoder.
        num_coupling_layers (int): WaveNet layers per coupling.
        decoder_dropout (float): WaveNet dropout.
        group_size (int): Channel group of the invertible 1x1 conv.
        squeeze_factor (int): Frames folded into channels before the flows.
        sigmoid_scale (bool): Bound coupling scales with a sigmoid.
        add_blank (bool): Insert ``blank_id`` between tokens and at both ends.
        blank_id (int): Token inserted by ``add_blank``.
        spks (Optional[int]): Number of speakers (speaker-id embedding). With spks > 1
            every call needs ``sids`` (a ValueError otherwise, where ESPnet's VITS fails on
            ``None``): no speaker is silently picked. ESPnet's recipes reserve sid 0 for
            unknown speakers, so spks is the number of speakers + 1.
        langs (Optional[int]): Number of languages (language-id embedding).
        spk_embed_dim (Optional[int]): Size of external speaker embeddings (e.g. x-vectors).
        global_channels (int): Width of the speaker/language vector that conditions the
            duration predictor and every coupling layer.
        memory_efficient_flows (bool): Recompute the decoder's activations from its outputs
            in backward (Glow's trick): same gradients, a fraction of the activation
            memory, more time per step (bench/train_step.py measures both).
        pack_flow_batch (bool): Run the couplings' WaveNets on the valid frames only, the
            batch's utterances laid end to end: the same numbers, less work when batches
            are not sorted by length (bench/train_step.py measures it).

    """

    @typechecked
    def __init__(
        self,
        idim: int,
        odim: int = 80,
        hidden_channels: int = 192,
        filter_channels: int = 768,
        num_heads: int = 2,
        num_encoder_layers: int = 6,
        encoder_kernel_size: int = 3,
        encoder_dropout: float = 0.1,
        window_size: int = 4,
        use_prenet: bool = True,
        mean_only: bool = True,
        duration_filter_channels: int = 256,
        duration_kernel_size: int = 3,
        duration_dropout: float = 0.1,
        duration_target: str = "log",
        decoder_hidden_channels: int = 192,
        decoder_kernel_size: int = 5,
        decoder_dilation_rate: int = 1,
        num_flow_blocks: int = 12,
        num_coupling_layers: int = 4,
        decoder_dropout: float = 0.05,
        group_size: int = 4,
        squeeze_factor: int = 2,
        sigmoid_scale: bool = False,
        add_blank: bool = True,
        blank_id: int = 0,
        spks: Optional[int] = None,
        langs: Optional[int] = None,
        spk_embed_dim: Optional[int] = None,
        global_channels: int = 256,
        memory_efficient_flows: bool = False,
        pack_flow_batch: bool = False,
    ):
        super().__init__()
        if duration_target not in DURATION_TARGETS:
            raise ValueError(
                f"duration_target must be one of {DURATION_TARGETS}, "
                f"got {duration_target!r}"
            )
        if not 0 <= blank_id < idim:
            raise ValueError(
                f"blank_id {blank_id} is outside the vocabulary [0, {idim})"
            )
        self.idim = idim
        self.odim = odim
        self.duration_target = duration_target
        self.squeeze_factor = squeeze_factor
        self.add_blank = add_blank
        self.blank_id = blank_id
        self.spks = spks if spks and spks > 1 else None
        self.langs = langs if langs and langs > 1 else None
        self.spk_embed_dim = (
            spk_embed_dim if spk_embed_dim and spk_embed_dim > 0 else None
        )

        conditioned = any(
            v is not None for v in (self.spks, self.langs, self.spk_embed_dim)
        )
        cond_channels = global_channels if conditioned else 0
        self.sid_emb = nn.Embedding(self.spks, global_channels) if self.spks else None
        self.lid_emb = nn.Embedding(self.langs, global_channels) if self.langs else None
        self.spemb_proj = (
            nn.Linear(self.spk_embed_dim, global_channels)
            if self.spk_embed_dim
            else None
        )

        self.encoder = TextEncoder(
            idim,
            odim,
            hidden_channels,
            filter_channels,
            num_heads,
            num_encoder_layers,
            encoder_kernel_size,
            encoder_dropout,
            window_size,
            use_prenet,
            mean_only,
        )
        self.duration_predictor = DurationPredictor(
            hidden_channels,
            duration_filter_channels,
            duration_kernel_size,
            duration_dropout,
            cond_channels,
        )
        self.decoder = FlowDecoder(
            odim,
            decoder_hidden_channels,
            decoder_kernel_size,
            decoder_dilation_rate,
            num_flow_blocks,
            num_coupling_layers,
            decoder_dropout,
            group_size,
            squeeze_factor,
            sigmoid_scale,
            cond_channels,
            memory_efficient=memory_efficient_flows,
            pack_batch=pack_flow_batch,
        )

    # ----------------------------------------------------------------------------------
    # Input checks: every bad input is a ValueError that names it, never a silent NaN.
    def _check_text(self, text: torch.Tensor, text_lengths: torch.Tensor) -> None:
        if text.numel() == 0 or bool((text_lengths <= 0).any()):
            raise ValueError(
                "text is empty: every utterance needs at least one token "
                f"(text_lengths={text_lengths.tolist()})"
            )
        valid = sequence_mask(text_lengths, text.size(1))[:, 0].bool()
        tokens = text[valid]
        bad = tokens[(tokens < 0) | (tokens >= self.idim)]
        if bad.numel() > 0:
            raise ValueError(
                f"text contains token id {int(bad[0])} outside the vocabulary "
                f"[0, {self.idim}) of this model (idim={self.idim})"
            )

    def _check_feats(self, feats: torch.Tensor) -> None:
        if feats.size(-1) != self.odim:
            raise ValueError(
                f"feats has feature dimension {feats.size(-1)}, but this model "
                f"expects odim={self.odim}"
            )
        if not bool(torch.isfinite(feats).all()):
            raise ValueError("feats contains NaN or inf values")

    def _global_condition(
        self,
        batch_size: int,
        sids: Optional[torch.Tensor],
        spembs: Optional[torch.Tensor],
        lids: Optional[torch.Tensor],
    ) -> Optional[torch.Tensor]:
        """Sum the speaker/language vectors into (B, global_channels, 1), or None."""
        g = None
        for name, ids, table, count in (
            ("sids", sids, self.sid_emb, self.spks),
            ("lids", lids, self.lid_emb, self.langs),
        ):
            if table is None:
                continue
            if ids is None:
                raise ValueError(
                    f"{name} is required: this model was built for "
                    f"{count} {'speakers' if name == 'sids' else 'languages'}"
                )
            ids = ids.view(-1).long()
            if ids.numel() != batch_size:
                raise ValueError(
                    f"{name} has {ids.numel()} entries for a batch of " f"{batch_size}"
                )
            if bool(((ids < 0) | (ids >= count)).any()):
                raise ValueError(
                    f"{name} contains {ids.tolist()}, expected ids in " f"[0, {count})"
                )
            g = table(ids) if g is None else g + table(ids)
        if self.spemb_proj is not None:
            if spembs is None:
                raise ValueError(
                    f"spembs is required: this model was built with "
                    f"spk_embed_dim={self.spk_embed_dim}"
                )
            spembs = spembs.view(batch_size, -1) if spembs.numel() else spembs
            if spembs.size(-1) != self.spk_embed_dim:
                raise ValueError(
                    f"spembs has size {spembs.size(-1)}, expected "
                    f"spk_embed_dim={self.spk_embed_dim}"
                )
            v = self.spemb_proj(nn.functional.normalize(spembs.float(), dim=-1))
            g = v if g is None else g + v
        # float32 even under autocast: g conditions the float32 flows.
        return None if g is None else g.float().unsqueeze(-1)

    # ----------------------------------------------------------------------------------
    def _encode(self, text: torch.Tensor, text_lengths: torch.Tensor):
        """Tokens -> (hidden, prior mean, prior log-std, mask), blanks inserted if set."""
        if self.add_blank:
            text, text_lengths = intersperse_blank(text, text_lengths, self.blank_id)
        x_mask = sequence_mask(text_lengths, text.size(1))
        x, mean, log_std = self.encoder(text, x_mask)
        return x, mean.float(), log_std.float(), x_mask, text_lengths

    def _align(
        self,
        z: torch.Tensor,
        mean: torch.Tensor,
        log_std: torch.Tensor,
        x_lengths: torch.Tensor,
        feats_lengths: torch.Tensor,
    ) -> torch.Tensor:
        """Most likely monotonic path (B, T_text, T_feats) of latents to token priors."""
        with torch.no_grad():
            value = log_likelihood(z, mean, log_std)
            return maximum_path(
                value, None, text_lengths=x_lengths, feats_lengths=feats_lengths
            )

    def _duration_target(self, durations: torch.Tensor) -> torch.Tensor:
        if self.duration_target == "log":
            return torch.log(durations.clamp_min(1.0))
        return torch.log1p(durations)

    def _durations_from_log(
        self, logw: torch.Tensor, length_scale: float
    ) -> torch.Tensor:
        w = torch.exp(logw)
        if self.duration_target == "log1p":
            w = w - 1.0
        return torch.ceil(w * length_scale).clamp_min(1.0)

    def _trim(self, feats: torch.Tensor, feats_lengths: torch.Tensor):
        """Cut features to a multiple of the squeeze factor (the flows need it)."""
        f = self.squeeze_factor
        lengths = feats_lengths // f * f
        return feats[:, : int(lengths.max())], lengths

    def _flow_and_align(
        self, text, text_lengths, feats, feats_lengths, g
    ) -> "_Aligned":
        """Encode the text, map the features through the flows and align them with MAS."""
        feats, feats_lengths = self._trim(feats, feats_lengths)
        x, mean, log_std, x_mask, x_lengths = self._encode(text, text_lengths)
        short = (feats_lengths < x_lengths).nonzero().view(-1).tolist()
        if short:
            i = short[0]
            raise ValueError(
                f"utterance {i} of the batch has {int(feats_lengths[i])} frames (after "
                f"trimming to a multiple of squeeze_factor={self.squeeze_factor}) for "
                f"{int(x_lengths[i])} tokens (after add_blank={self.add_blank}): MAS needs "
                "at least one frame per token; filter such utterances out"
            )
        # The flows and the likelihood are float32 even under autocast: exp(logs) and the
        # log-determinants overflow or lose precision in half precision.
        with torch.autocast(device_type=feats.device.type, enabled=False):
            y = feats.float().transpose(1, 2)
            y_mask = sequence_mask(feats_lengths, y.size(-1))
            z, logdet = self.decoder(y, y_mask, g)
            path = self._align(z, mean, log_std, x_lengths, feats_lengths)
        return _Aligned(
            x, mean, log_std, x_mask, x_lengths, z, logdet, y_mask, feats_lengths, path
        )

    def _encode_and_predict(self, text, text_lengths, g):
        """``_encode`` and the predicted log-durations logw (B, 1, T_text')."""
        x, mean, log_std, x_mask, x_lengths = self._encode(text, text_lengths)
        logw = self.duration_predictor(x.float(), x_mask, g)
        return mean, log_std, x_mask, x_lengths, logw

    def _sample_and_decode(self, path, mean, log_std, y_mask, g, noise_scale):
        """Sample latents from the token priors along ``path`` and run the flows in reverse."""
        mean_y = torch.bmm(mean, path)
        log_std_y = torch.bmm(log_std, path)
        z = (
            mean_y + torch.exp(log_std_y) * torch.randn_like(mean_y) * noise_scale
        ) * y_mask
        graphs = self._graphs_for(z)
        if graphs is not None:
            return graphs.decode(z, y_mask, g)
        return self.decoder(z, y_mask, g, reverse=True)[0]

    # ----------------------------------------------------------------------------------
    def enable_cuda_graphs(
        self, token_bucket: int = 32, frame_bucket: int = 128, capture: bool = True
    ) -> None:
        """Replay inference as CUDA graphs, one per bucket of lengths (``cuda_graphs.py``).

        Synthesis on a GPU is bound by kernel launches; replaying them as graphs makes it
        several times faster, with the same output (inputs are padded and masked). Each new
        bucket is captured once, on first use. Call after moving the model to its device,
        and ``disable_cuda_graphs`` before copying the model (graphs cannot be copied).

        Args:
            token_bucket (int): Token lengths are padded up to a multiple of this.
            frame_bucket (int): Frame lengths are padded up to a multiple of this.
            capture (bool): False runs the padded computation eagerly (checks on a CPU).

        """
        from espnet_glowtts.cuda_graphs import GraphedInference

        if capture and not torch.cuda.is_available():
            raise ValueError(
                "enable_cuda_graphs needs a CUDA device (none is available)"
            )
        self._cuda_graphs = GraphedInference(self, token_bucket, frame_bucket, capture)

    def disable_cuda_graphs(self) -> None:
        """Back to eager inference (frees the captured graphs)."""
        self._cuda_graphs = None

    def _graphs_for(self, x: torch.Tensor):
        graphs = self.__dict__.get("_cuda_graphs")
        if graphs is None or self.training or torch.is_grad_enabled():
            return None
        return graphs if (x.is_cuda or not graphs.capture) else None

    # ----------------------------------------------------------------------------------
    def forward(
        self,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        feats: torch.Tensor,
        feats_lengths: torch.Tensor,
        spembs: Optional[torch.Tensor] = None,
        sids: Optional[torch.Tensor] = None,
        lids: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """Compute the MLE and duration losses.

        Args:
            text (LongTensor): Token ids (B, T_text), padded with 0.
            text_lengths (LongTensor): (B,).
            feats (Tensor): Normalised features (B, T_feats, odim).
            feats_lengths (LongTensor): (B,).
            spembs (Optional[Tensor]): Speaker embeddings (B, spk_embed_dim).
            sids (Optional[LongTensor]): Speaker ids (B, 1).
            lids (Optional[LongTensor]): Language ids (B, 1).
            kwargs: Other ESPnet batch entries (durations, pitch, ...), unused.

        Returns:
            Tensor: Loss (MLE + duration).
            Dict[str, Tensor]: Statistics: loss, mle_loss, duration_loss and alignment
                diagnostics.
            Tensor: Weight (batch size) for ESPnet's gathering.

        """
        batch_size = text.size(0)
        self._check_text(text, text_lengths)
        self._check_feats(feats)
        g = self._global_condition(batch_size, sids, spembs, lids)
        a = self._flow_and_align(text, text_lengths, feats, feats_lengths, g)

        with torch.autocast(device_type=feats.device.type, enabled=False):
            mean_y = torch.bmm(a.mean, a.path)  # (B, odim, T_feats)
            log_std_y = torch.bmm(a.log_std, a.path)
            nll = (
                torch.sum(log_std_y * a.y_mask)
                + 0.5
                * torch.sum(torch.exp(-2 * log_std_y) * (a.z - mean_y) ** 2 * a.y_mask)
                - torch.sum(a.logdet)
            )
            mle_loss = nll / (a.y_mask.sum() * self.odim) + 0.5 * math.log(2 * math.pi)

            durations = a.path.sum(-1)  # (B, T_text)
            logw = self.duration_predictor(a.x.detach().float(), a.x_mask, g)[:, 0]
            target = self._duration_target(durations) * a.x_mask[:, 0]
            duration_loss = torch.sum((logw - target) ** 2) / a.x_mask.sum()
            loss = mle_loss + duration_loss

        valid = a.x_mask[:, 0] > 0
        stats = dict(
            loss=loss.item(),
            mle_loss=mle_loss.item(),
            duration_loss=duration_loss.item(),
            align_single_frame_ratio=(durations[valid] == 1).float().mean().item(),
            align_max_duration=durations.max().item(),
        )
        loss, stats, weight = force_gatherable((loss, stats, batch_size), loss.device)
        return loss, stats, weight

    # ----------------------------------------------------------------------------------
    @torch.no_grad()
    def inference(
        self,
        text: torch.Tensor,
        feats: Optional[torch.Tensor] = None,
        spembs: Optional[torch.Tensor] = None,
        sids: Optional[torch.Tensor] = None,
        lids: Optional[torch.Tensor] = None,
        durations: Optional[torch.Tensor] = None,
        noise_scale: float = 0.333,
        length_scale: float = 1.0,
        use_teacher_forcing: bool = False,
        **kwargs,
    ) -> Dict[str, torch.Tensor]:
        """Synthesise the features of one utterance.

        Args:
            text (LongTensor): Token ids (T_text,).
            feats (Optional[Tensor]): Normalised features (T_feats, odim), for teacher
                forcing.
            spembs (Optional[Tensor]): Speaker embedding (spk_embed_dim,).
            sids (Optional[LongTensor]): Speaker id (1,).
            lids (Optional[LongTensor]): Language id (1,).
            durations (Optional[LongTensor]): Frames per input token (T_text,) to use
                instead of the predicted ones.
            noise_scale (float): Temperature of the prior sample (0 = deterministic; 0.333
                as in the paper's MOS evaluation).
            length_scale (float): Duration multiplier (> 1 is slower).
            use_teacher_forcing (bool): Align ``feats`` with MAS and return its durations.
            kwargs: Other decoding options of ESPnet, unused.

        Returns:
            Dict[str, Tensor]:
                * feat_gen (Tensor): Features (T_feats, odim).
                * duration (LongTensor): Frames per input token (T_text,).

        """
        text = text.view(-1)
        out = self.batch_inference(
            text[None],
            text_lengths=text.new_tensor([text.numel()]),
            feats=None if feats is None else feats[None],
            spembs=None if spembs is None else spembs.view(1, -1),
            sids=None if sids is None else sids.view(1),
            lids=None if lids is None else lids.view(1),
            durations=None if durations is None else durations.view(1, -1),
            noise_scale=noise_scale,
            length_scale=length_scale,
            use_teacher_forcing=use_teacher_forcing,
        )
        return dict(feat_gen=out["feat_gen"][0], duration=out["duration"][0])

    @torch.no_grad()
    def batch_inference(
        self,
        text: Union[torch.Tensor, Sequence[torch.Tensor]],
        text_lengths: Optional[torch.Tensor] = None,
        feats: Optional[torch.Tensor] = None,
        feats_lengths: Optional[torch.Tensor] = None,
        spembs: Optional[torch.Tensor] = None,
        sids: Optional[torch.Tensor] = None,
        lids: Optional[torch.Tensor] = None,
        durations: Optional[torch.Tensor] = None,
        noise_scale: float = 0.333,
        length_scale: float = 1.0,
        use_teacher_forcing: bool = False,
        **kwargs,
    ) -> Dict[str, Union[torch.Tensor, List[torch.Tensor]]]:
        """Synthesise a batch in one pass.

        Args:
            text: Token ids, a list of (T_text_i,) tensors or a padded (B, T_text) tensor.
            text_lengths (Optional[LongTensor]): (B,), required with a padded tensor.
            feats, feats_lengths: Normalised features (B, T_feats, odim) for teacher forcing.
            spembs, sids, lids: As in :meth:`forward`.
            durations (Optional[LongTensor]): Frames per input token (B, T_text).
            noise_scale, length_scale, use_teacher_forcing: As in :meth:`inference`.

        Returns:
            Dict:
                * feat_gen (List[Tensor]): Features (T_feats_i, odim) per utterance.
                * feat_gen_lengths (LongTensor): (B,).
                * duration (LongTensor): Frames per input token (B, T_text), 0-padded.

        """
        if isinstance(text, (list, tuple)):
            text_lengths = torch.tensor(
                [t.numel() for t in text], device=text[0].device
            )
            text = pad_sequence([t.view(-1) for t in text], batch_first=True)
        elif text_lengths is None:
            raise ValueError("text_lengths is required when text is a padded tensor")
        self._check_text(text, text_lengths)
        g = self._global_condition(text.size(0), sids, spembs, lids)
        if use_teacher_forcing:
            if feats is None:
                raise ValueError("use_teacher_forcing=True needs feats (T_feats, odim)")
            self._check_feats(feats)
            if feats_lengths is None:
                feats_lengths = text_lengths.new_full((feats.size(0),), feats.size(1))
            y, y_lengths, w = self._teacher_forced(
                text, text_lengths, feats, feats_lengths, g, noise_scale
            )
        else:
            y, y_lengths, w = self._synthesize(
                text, text_lengths, g, noise_scale, length_scale, durations
            )
        feat_gen = [y[i, :, : int(n)].transpose(0, 1) for i, n in enumerate(y_lengths)]
        return dict(
            feat_gen=feat_gen,
            feat_gen_lengths=y_lengths,
            duration=self._fold(w, text_lengths),
        )

    def _synthesize(self, text, text_lengths, g, noise_scale, length_scale, durations):
        """Features from predicted (or given) durations.

        Returns:
            Tensor: Features (B, odim, T_feats).
            LongTensor: Feature lengths (B,).
            LongTensor: Frames per model token (B, T_text'), blanks included.

        """
        graphs = self._graphs_for(text)
        encode = self._encode_and_predict if graphs is None else graphs.encode
        mean, log_std, x_mask, x_lengths, logw = encode(text, text_lengths, g)
        if durations is None:
            w = self._durations_from_log(logw[:, 0], length_scale)
        else:
            w = self._expand_durations(durations.to(text.device).float(), x_lengths)
        w = (w * x_mask[:, 0]).long()
        # Round each utterance up to a multiple of the squeeze: the extra frames go to its
        # last token, so durations always sum to the output length.
        totals = w.sum(1)
        extra = (-totals) % self.squeeze_factor
        w[torch.arange(w.size(0)), x_lengths - 1] += extra
        y_lengths = totals + extra
        y_mask = sequence_mask(y_lengths)
        path = path_from_durations(w, x_mask.transpose(1, 2) * y_mask).float()
        return (
            self._sample_and_decode(path, mean, log_std, y_mask, g, noise_scale),
            y_lengths,
            w,
        )

    def _teacher_forced(self, text, text_lengths, feats, feats_lengths, g, noise_scale):
        """MAS durations of given features, and the features resynthesised along them."""
        a = self._flow_and_align(text, text_lengths, feats, feats_lengths, g)
        w = a.path.sum(-1).long()
        # Frames cut by the squeeze trim belong to the last token.
        w[torch.arange(w.size(0)), a.x_lengths - 1] += feats_lengths - a.feats_lengths
        y = self._sample_and_decode(a.path, a.mean, a.log_std, a.y_mask, g, noise_scale)
        return y, a.feats_lengths, w

    def _expand_durations(self, durations: torch.Tensor, x_lengths: torch.Tensor):
        """User durations over the input tokens -> durations over the model's tokens."""
        if not self.add_blank or durations.size(1) == x_lengths.max():
            return durations
        w = durations.new_zeros(durations.size(0), 2 * durations.size(1) + 1)
        w[:, 1::2] = durations  # blanks get no frames
        return w

    def _fold(self, w: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
        """Durations over the model's tokens -> durations over the input tokens."""
        return fold_blank_durations(w, text_lengths) if self.add_blank else w


class _Aligned(NamedTuple):
    """What the flows and MAS give for a batch of (text, features)."""

    x: torch.Tensor  # encoder output (B, C, T_text')
    mean: torch.Tensor  # prior mean (B, odim, T_text')
    log_std: torch.Tensor  # prior log-std (B, odim, T_text')
    x_mask: torch.Tensor  # (B, 1, T_text')
    x_lengths: torch.Tensor  # tokens after add_blank (B,)
    z: torch.Tensor  # latents (B, odim, T_feats)
    logdet: torch.Tensor  # decoder log-determinant (B,)
    y_mask: torch.Tensor  # (B, 1, T_feats)
    feats_lengths: torch.Tensor  # frames after the squeeze trim (B,)
    path: torch.Tensor  # MAS alignment (B, T_text', T_feats)
