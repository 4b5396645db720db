// ACE-Step v1 pack: pure helpers of the waveform drawing (peaks, latent length of a decoded file, /view
// references of ComfyUI files). No DOM, no side effects at import; unit-tested by tests/web/waveform.test.mjs.

/** Per-column {min, max} over all channels (Float32Array[] of equal length) for `columns` pixel columns. */
export function computePeaks(channels, columns) {
  const count = Math.max(1, Math.floor(columns));
  const min = new Float32Array(count);
  const max = new Float32Array(count);
  const length = channels.length ? channels[0].length : 0;
  if (!length) return { min, max };
  for (let column = 0; column < count; column++) {
    const from = Math.floor((column * length) / count);
    const to = Math.max(from + 1, Math.floor(((column + 1) * length) / count));
    let lo = Infinity;
    let hi = -Infinity;
    for (const data of channels) {
      for (let i = from; i < to && i < length; i++) {
        const v = data[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    min[column] = Number.isFinite(lo) ? lo : 0;
    max[column] = Number.isFinite(hi) ? hi : 0;
  }
  return { min, max };
}

/** Latent frames Audio To Latent makes of `numSamples` at `sampleRate`: ceil(N' / samples per frame), N' the
 * length at the codec's rate (the padded tail is encoded too), as acestep_core/audio_codec.py encode(). */
export function sourceFramesForSamples(numSamples, sampleRate, timeline) {
  const codecSamples = Math.ceil((numSamples * timeline.sample_rate) / sampleRate - 1e-9);
  const samplesPerFrame = Math.round(timeline.sample_rate / timeline.latent_rate_hz);
  return Math.ceil(codecSamples / samplesPerFrame);
}

/** LoadAudio's widget value ("name.flac", "sub/name.flac", "name.flac [output]") -> a /view reference. */
export function fileRefFromWidgetValue(value) {
  if (typeof value !== "string" || !value.trim()) return null;
  let name = value.trim();
  let type = "input";
  const annotated = /^(.*?)\s*\[(input|output|temp)\]$/.exec(name);
  if (annotated) {
    name = annotated[1];
    type = annotated[2];
  }
  const slash = name.lastIndexOf("/");
  return { filename: name.slice(slash + 1), subfolder: slash < 0 ? "" : name.slice(0, slash), type };
}

/** The /view path of a file reference ({filename, subfolder, type}), to pass to api.apiURL(). */
export function viewPath(ref) {
  const query = new URLSearchParams({ filename: ref.filename, subfolder: ref.subfolder ?? "", type: ref.type ?? "output" });
  return `/view?${query}`;
}

/** A stable key of a file reference (to skip re-decoding the same file). */
export function refKey(ref) {
  return ref ? `${ref.type ?? ""}|${ref.subfolder ?? ""}|${ref.filename}` : "";
}
