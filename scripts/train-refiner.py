#!/usr/bin/env python3
"""Trains the classic model's refiner and writes models/classic-refiner.json.

The refiner is a small convolutional net over the cascade's masks and mixture features (src/separate/classic.ts,
REFINER_FEATURES); it corrects the cascade's log masks, and a softmax over the four stems keeps their sum at 1.

Training data (README, "Training the refiner"): excerpts of the Simutrans and OpenMSX General MIDI collections and
songs composed at random by scripts/compose-midi.mjs, rendered like the dev set, with Asterisk prompts in Spanish
(Allison) and Canadian French (June) as speech. No Planet Blupi song (the dev set's collection) and no English
prompt is used, so the dev and Planet Blupi held-out numbers stay unseen:

    npm run build
    node scripts/make-heldout.mjs /tmp/train2 --seed 400 --excerpts 3 --speech es,fr --songs <Simutrans .mid, comma-separated>
    node scripts/make-heldout.mjs /tmp/train2 --seed 500 --excerpts 3 --speech es,fr --songs <OpenMSX .mid, comma-separated>
    node scripts/make-heldout.mjs /tmp/train --random 120 --seed 100 --speech es,fr
    node scripts/make-heldout.mjs /tmp/train --random 120 --seed 200 --speech es,fr
    node scripts/dump-cascade.mjs /tmp/train2 && node scripts/dump-cascade.mjs /tmp/train
    python3 scripts/train-refiner.py /tmp/train2 /tmp/train --epochs 8 --crops 8 --hidden 40 --lr 3e-3 --cache /tmp/crops
    node scripts/build-classic-model.mjs

Needs numpy and torch (Debian: python3-torch) and ffmpeg. The features here mirror the graph's exactly (same STFT
framing, floors and bin mappings); the loss is the phase-sensitive magnitude error summed over stems, channels and
bins, which weights bins by energy as the SDR does, divided per stem by the stem's energy in the batch (an SDR-like
ratio, so that quiet stems count as much as loud ones).
"""
import argparse
import base64
import hashlib
import json
import multiprocessing
import os
import subprocess
import sys

import numpy as np
import torch

RATE = 44100
N_FFT = 4096
HOP = 1024
BINS = N_FFT // 2 + 1
R = 2  # CLASSIC_PARAMS.refiner.timeRadius
FREQ_BASIS = 9
LOG_FLOOR = 1e-3
LEVEL_FLOOR = 1e-5
STEREO_SHARPNESS = 20
STEMS = ['drums', 'bass', 'other', 'vocals']
FEATURES = [
    'log_mask_drums', 'log_mask_bass', 'log_mask_other', 'log_mask_vocals',
    'level', 'lr_similarity', 'lr_similarity_sharp',
    'level_at_half_f', 'level_at_third_f', 'level_at_2f', 'level_at_3f',
    'log_mask_bass_at_half_f', 'log_mask_bass_at_third_f', 'log_level',
]
LOG_LEVEL = FEATURES.index('log_level')
TRAIN_BINS = 1024  # ~11 kHz: above it there is little energy to learn from; the net is convolutional in frequency
CROP = 40  # frames per training crop (36 outputs + 2·R context)


def decode(path):
    raw = subprocess.run(['ffmpeg', '-v', 'error', '-i', path, '-f', 'f32le', '-ac', '2', '-ar', str(RATE), '-'],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype='<f4').reshape(-1, 2).T.astype(np.float64)


def stft(x):
    """Centred frames k·hop − n/2 with zeros outside the track, periodic Hann: as MaskStage in classic.ts."""
    n = x.shape[-1]
    frames = 1 + n // HOP
    pad = np.zeros((x.shape[0], N_FFT // 2 + n + N_FFT), dtype=np.float64)
    pad[:, N_FFT // 2:N_FFT // 2 + n] = x
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    idx = np.arange(frames)[:, None] * HOP + np.arange(N_FFT)[None, :]
    return np.fft.rfft(pad[:, idx] * win, axis=-1)  # [channels, frames, bins]


def basis():
    hz = np.arange(BINS) * RATE / N_FFT
    u = np.clip(np.log2(np.maximum(hz, 1) / 40), 0, FREQ_BASIS - 1)
    return np.maximum(0, 1 - np.abs(u[None, :] - np.arange(FREQ_BASIS)[:, None]))  # [basis, bins]


def allowed():
    """The graph's fixed priors: below 16 Hz only other; vocals only in the voice band (120 Hz – 8 kHz), other
    nothing from 16 to 80 Hz."""
    hz = np.arange(BINS) * RATE / N_FFT
    w = np.ones((len(STEMS), BINS))
    w[STEMS.index('vocals')] = (hz > 120) & (hz < 8000)
    w[STEMS.index('other')] = hz >= 80
    w[:, hz < 16] = 0
    w[STEMS.index('other'), hz < 16] = 1
    return w


def gather(x, fn):
    k = np.minimum(BINS - 1, fn(np.arange(BINS)))
    return x[..., k]


def features(masks, X):
    """masks: [3 (drums, bass, vocals), T, F] from dump-cascade; X: [2, T, F] complex.
    Returns [len(FEATURES), T, F] float32."""
    drums, bass, vocals = masks
    other = np.maximum(0, 1 - vocals - bass - drums)
    lm = {k: np.log(m + LOG_FLOOR) for k, m in zip(STEMS, [drums, bass, other, vocals])}
    pl = np.abs(X[0]) ** 2
    pr = np.abs(X[1]) ** 2
    log_level = np.log(np.sqrt((pl + pr) * 0.5) + LEVEL_FLOOR)
    level = log_level - log_level.mean(axis=1, keepdims=True)
    sim = 2 * np.sqrt(pl * pr) / (pl + pr + 1e-20)
    f = [lm['drums'], lm['bass'], lm['other'], lm['vocals'], level, sim, sim ** STEREO_SHARPNESS,
         gather(level, lambda k: k // 2), gather(level, lambda k: k // 3), gather(level, lambda k: 2 * k),
         gather(level, lambda k: 3 * k), gather(lm['bass'], lambda k: k // 2), gather(lm['bass'], lambda k: k // 3),
         log_level]
    return np.stack(f).astype(np.float32)


def load_song(args):
    d, seed, crops = args
    rng = np.random.default_rng(seed)
    mix = decode(os.path.join(d, 'mixture.flac'))
    X = stft(mix)
    T = X.shape[1]
    masks = np.fromfile(os.path.join(d, 'cascade-masks.f32'), dtype='<f4').reshape(3, T, BINS).astype(np.float64)
    feat = features(masks, X)
    feat = np.concatenate([np.repeat(feat[:, :1], R, axis=1), feat, np.repeat(feat[:, -1:], R, axis=1)], axis=1)
    absX = np.abs(X)
    targets = []
    for s in STEMS:
        S = stft(decode(os.path.join(d, f'{s}.flac')))
        # Phase-sensitive target: the part of the stem in phase with the mixture, which a real mask can reach.
        targets.append(np.clip(np.abs(S) * np.cos(np.angle(S) - np.angle(X)), 0, absX))
    targets = np.stack(targets)  # [4, 2, T, F]
    out = []
    starts = rng.choice(max(1, T - (CROP - 2 * R)), size=crops, replace=False)
    for s0 in starts:
        sl = slice(s0, s0 + CROP - 2 * R)
        out.append((feat[:, s0:s0 + CROP, :TRAIN_BINS].astype(np.float16),
                    targets[:, :, sl, :TRAIN_BINS].astype(np.float16),
                    absX[:, sl, :TRAIN_BINS].astype(np.float16)))
    return out


class Refiner(torch.nn.Module):
    def __init__(self, hidden, bins):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(len(FEATURES), hidden, (2 * R + 1, 3))
        self.freq = torch.nn.Parameter(torch.zeros(hidden, FREQ_BASIS))
        self.conv2 = torch.nn.Conv2d(hidden, hidden, 1)
        self.conv3 = torch.nn.Conv2d(hidden, len(STEMS), 1)
        torch.nn.init.zeros_(self.conv3.weight)  # starts as the cascade
        torch.nn.init.zeros_(self.conv3.bias)
        self.register_buffer('basis', torch.tensor(basis()[:, :bins], dtype=torch.float32))
        self.register_buffer('allowed', torch.tensor(allowed()[:, None, :bins], dtype=torch.float32))

    def weight1(self):
        """conv1's weights with the log_level kernel made to sum to zero: a gain adds a constant to log_level, which
        then cancels, so the masks do not depend on the input's level (as with every other feature)."""
        w = self.conv1.weight
        z = w[:, LOG_LEVEL:LOG_LEVEL + 1]
        return torch.cat([w[:, :LOG_LEVEL], z - z.mean(dim=(2, 3), keepdim=True), w[:, LOG_LEVEL + 1:]], dim=1)

    def forward(self, feat):  # feat [B, features, T + 2R, F] → masks [B, 4, T, F]
        # Mirrored edge bins in frequency, as in the graph (a magnitude spectrum is symmetric about 0 Hz); at the
        # crop's top bin (~11 kHz) this mirrors where the graph sees the next bin: one bin in 1024 differs.
        mirrored = torch.nn.functional.pad(feat, (1, 1, 0, 0), mode='reflect')
        y = torch.nn.functional.conv2d(mirrored, self.weight1(), self.conv1.bias)
        y = y + (self.freq @ self.basis)[None, :, None, :]
        y = torch.relu(self.conv2(torch.relu(y)))
        y = self.conv3(y)
        soft = torch.softmax(y + feat[:, :4, R:-R, :], dim=1) * self.allowed
        return soft / soft.sum(dim=1, keepdim=True)


def export(model, hidden, path):
    def t(x):
        a = x.detach().numpy().astype('<f4')
        return {'dims': list(a.shape), 'data': base64.b64encode(a.tobytes()).decode()}
    tensors = {
        'conv1': t(model.weight1()), 'bias1': t(model.conv1.bias), 'freqBias': t(model.freq),
        'conv2': t(model.conv2.weight.reshape(hidden, hidden)), 'bias2': t(model.conv2.bias),
        'conv3': t(model.conv3.weight.reshape(len(STEMS), hidden)), 'bias3': t(model.conv3.bias),
    }
    doc = {'format': 'stemkit-classic-refiner/1', 'hidden': hidden, 'features': FEATURES, 'tensors': tensors}
    with open(path + '.tmp', 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')
    os.replace(path + '.tmp', path)


def load(songs, a):
    """The training crops as three arrays (features, targets, |X|); --cache keeps them for the next run."""
    paths = hashlib.sha256('\n'.join(os.path.abspath(s) for s in songs).encode()).hexdigest()[:16]
    key = f'{len(songs)} songs ({paths}), crops {a.crops}, seed {a.seed}, crop {CROP}, features {",".join(FEATURES)}'
    if a.cache and os.path.exists(a.cache + '.npz'):
        z = np.load(a.cache + '.npz')
        if str(z['key']) == key:
            print(f'loaded {key} from {a.cache}.npz', file=sys.stderr)
            return z['feat'], z['tgt'], z['absX']
    data = None
    jobs = [(s, a.seed * 100003 + i, a.crops) for i, s in enumerate(songs)]
    with multiprocessing.Pool(a.threads) as pool:
        for i, crops in enumerate(pool.imap(load_song, jobs)):
            # Filled in place: a list of crops stacked at the end would need the memory twice.
            data = data or tuple(np.empty((len(songs) * a.crops, *x.shape), dtype=x.dtype) for x in crops[0])
            for c, crop in enumerate(crops):
                for j in range(3):
                    data[j][i * a.crops + c] = crop[j]
            print(f'\rloaded {i + 1}/{len(songs)} songs', end='', file=sys.stderr)
    print(file=sys.stderr)
    if a.cache:
        np.savez(a.cache + '.tmp.npz', key=key, feat=data[0], tgt=data[1], absX=data[2])
        os.replace(a.cache + '.tmp.npz', a.cache + '.npz')
    return data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('folders', nargs='+', help='folders of songs with cascade-masks.f32 (dump-cascade)')
    ap.add_argument('--epochs', type=int, default=12)
    ap.add_argument('--hidden', type=int, default=32)
    ap.add_argument('--crops', type=int, default=8, help='crops of 36 frames per song')
    ap.add_argument('--batch', type=int, default=4)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--cache', help='keep the loaded crops in CACHE.npz and reuse them when songs and options match')
    ap.add_argument('--out', default=os.path.join(os.path.dirname(__file__), '..', 'models', 'classic-refiner.json'))
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    songs = sorted(os.path.join(f, d) for f in a.folders for d in os.listdir(f)
                   if os.path.exists(os.path.join(f, d, 'cascade-masks.f32')))
    if not songs:
        sys.exit(f'no songs with cascade-masks.f32 in {" ".join(a.folders)}: run scripts/dump-cascade.mjs first')
    data = load(songs, a)
    model = Refiner(a.hidden, TRAIN_BINS)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    n = len(data[0])
    steps = a.epochs * ((n + a.batch - 1) // a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps, pct_start=0.1)
    for epoch in range(a.epochs):
        order = rng.permutation(n)
        total = base = 0.0
        for b in range(0, len(order), a.batch):
            idx = np.sort(order[b:b + a.batch])
            feat = torch.tensor(data[0][idx], dtype=torch.float32)
            tgt = torch.tensor(data[1][idx], dtype=torch.float32)  # [B, 4, 2, T, F]
            absX = torch.tensor(data[2][idx], dtype=torch.float32)  # [B, 2, T, F]
            m = model(feat)
            # Per stem: error over the stem's energy in the batch (the SDR's ratio), so that quiet stems count as
            # much as loud ones, as in a per-stem score; the floor keeps near-silent stems from dominating.
            energy = (tgt ** 2).sum(dim=(0, 2, 3, 4))
            weight = 1 / (energy + 1e-2 * energy.sum())
            err = ((m[:, :, None] * absX[:, None] - tgt) ** 2).sum(dim=(0, 2, 3, 4))
            with torch.no_grad():
                prior = torch.softmax(feat[:, :4, R:-R, :], dim=1) * model.allowed
                prior = prior / prior.sum(dim=1, keepdim=True)
                base += (((prior[:, :, None] * absX[:, None] - tgt) ** 2).sum(dim=(0, 2, 3, 4)) * weight).sum().item()
            loss = (err * weight).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        print(f'epoch {epoch + 1}: error {10 * np.log10(total / base):+.2f} dB against the cascade', file=sys.stderr)
        export(model, a.hidden, a.out)
    print(f'wrote {a.out}', file=sys.stderr)


if __name__ == '__main__':
    main()
