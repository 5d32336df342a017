import { createHash } from "node:crypto";
import { PNG } from "pngjs";
import wavefile from "wavefile";
import type { Embedding, SurfaceProvider, TranscriptionRequest } from "../../surface-provider.js";
import { countTextTokens } from "../../tokens.js";

// SPEC 10: the demo answers every surface deterministically from the request,
// so the embedded default shows each endpoint working end to end (auth, hold,
// settle, ledger) without a model: embeddings are unit vectors derived from a
// hash, images a small PNG drawn from the prompt, speech a short tone.

export const DEMO_EMBEDDING_DIMENSIONS = 256;
const IMAGE_SIDE = 64;
const SPEECH_SAMPLE_RATE = 8_000;
const SPEECH_SECONDS_PER_CHARACTER = 0.02;
const SPEECH_MAX_SECONDS = 5;

const digest = (...parts: string[]) => {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part).update("\u0000");
  return hash.digest();
};

/** `count` numbers in [-1, 1), stable for a given text: SHA-256 of the text and a block counter. */
function hashedNumbers(text: string, count: number): number[] {
  const numbers: number[] = [];
  for (let block = 0; numbers.length < count; block++) {
    const bytes = digest(text, String(block));
    for (let i = 0; i + 2 <= bytes.length && numbers.length < count; i += 2) numbers.push(bytes.readUInt16LE(i) / 32_768 - 1);
  }
  return numbers;
}

function unitVector(text: string, dimensions: number): number[] {
  const raw = hashedNumbers(text, dimensions);
  const length = Math.hypot(...raw) || 1;
  // Rounded through float32, so the float and base64 encodings of one vector are the same numbers.
  return Array.from(Float32Array.from(raw, (x) => x / length));
}

/** OpenAI's base64 encoding of an embedding: its float32 values, little-endian. */
function base64Floats(values: number[]): string {
  const bytes = Buffer.alloc(values.length * 4);
  values.forEach((value, i) => bytes.writeFloatLE(value, i * 4));
  return bytes.toString("base64");
}

/** A PNG whose colours come from the prompt: the same prompt draws the same picture. */
function promptPicture(prompt: string, variant: number): Buffer {
  const [r1, g1, b1, r2, g2, b2] = digest(prompt, String(variant));
  const png = new PNG({ width: IMAGE_SIDE, height: IMAGE_SIDE });
  for (let y = 0; y < IMAGE_SIDE; y++) {
    for (let x = 0; x < IMAGE_SIDE; x++) {
      const t = (x + y) / (2 * (IMAGE_SIDE - 1));
      const at = (y * IMAGE_SIDE + x) * 4;
      png.data[at] = Math.round(r1! + (r2! - r1!) * t);
      png.data[at + 1] = Math.round(g1! + (g2! - g1!) * t);
      png.data[at + 2] = Math.round(b1! + (b2! - b1!) * t);
      png.data[at + 3] = 255;
    }
  }
  return PNG.sync.write(png);
}

/** A tone as long as the text would take to say (briefly), its pitch from the text and voice. */
function toneSamples(input: string, voice: string): Int16Array {
  const seconds = Math.min(SPEECH_MAX_SECONDS, Math.max(0.25, input.length * SPEECH_SECONDS_PER_CHARACTER));
  const pitch = 220 + (digest(input, voice).readUInt16LE(0) % 440);
  const samples = new Int16Array(Math.round(seconds * SPEECH_SAMPLE_RATE));
  for (let i = 0; i < samples.length; i++) samples[i] = Math.round(8_000 * Math.sin((2 * Math.PI * pitch * i) / SPEECH_SAMPLE_RATE));
  return samples;
}

function wav(samples: Int16Array): Buffer {
  const file = new wavefile.WaveFile();
  file.fromScratch(1, SPEECH_SAMPLE_RATE, "16", samples);
  return Buffer.from(file.toBuffer());
}

const words = (text: string) => new Set(text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []);

/** The share of the query's words the document contains: 0 to 1, the same every time. */
function overlap(query: Set<string>, document: string): number {
  if (query.size === 0) return 0;
  const inDocument = words(document);
  let shared = 0;
  for (const word of query) if (inDocument.has(word)) shared++;
  return shared / query.size;
}

const timestamp = (seconds: number, separator: "," | ".") => {
  const whole = Math.floor(seconds);
  const clock = [Math.floor(whole / 3600), Math.floor(whole / 60) % 60, whole % 60].map((n) => String(n).padStart(2, "0")).join(":");
  return `${clock}${separator}${String(Math.round((seconds - whole) * 1000)).padStart(3, "0")}`;
};

/** The demo's transcript, in each of OpenAI's response formats. */
function transcript({ audio, responseFormat }: TranscriptionRequest): { contentType: string; body: string } {
  const length = `${audio.seconds} second${audio.seconds === 1 ? "" : "s"}`;
  const text = `Demo transcription: ${length} of audio received in ${audio.filename} (${audio.bytes} bytes).`;
  const json = (value: unknown) => ({ contentType: "application/json", body: JSON.stringify(value) });
  switch (responseFormat) {
    case "json":
      return json({ text, usage: { type: "duration", seconds: audio.seconds } });
    case "verbose_json":
      return json({
        task: "transcribe",
        language: "english",
        duration: audio.seconds,
        text,
        segments: [{ id: 0, seek: 0, start: 0, end: audio.seconds, text, tokens: [], temperature: 0, avg_logprob: 0, compression_ratio: 1, no_speech_prob: 0 }],
        usage: { type: "duration", seconds: audio.seconds },
      });
    case "text":
      return { contentType: "text/plain; charset=utf-8", body: `${text}\n` };
    case "srt":
      return { contentType: "text/plain; charset=utf-8", body: `1\n${timestamp(0, ",")} --> ${timestamp(audio.seconds, ",")}\n${text}\n\n` };
    case "vtt":
      return { contentType: "text/vtt; charset=utf-8", body: `WEBVTT\n\n${timestamp(0, ".")} --> ${timestamp(audio.seconds, ".")}\n${text}\n\n` };
  }
}

export function createDemoSurfaces(): SurfaceProvider {
  return {
    async embeddings(request, signal) {
      signal.throwIfAborted();
      const dimensions = Math.min(request.dimensions ?? DEMO_EMBEDDING_DIMENSIONS, DEMO_EMBEDDING_DIMENSIONS);
      const texts = request.input.map((item) => (typeof item === "string" ? item : `tokens:${item.join(",")}`));
      const data: Embedding[] = texts.map((text, index) => {
        const vector = unitVector(text, dimensions);
        return { index, embedding: request.encodingFormat === "base64" ? base64Floats(vector) : vector };
      });
      const promptTokens = request.input.reduce<number>((sum, item) => sum + (typeof item === "string" ? countTextTokens(item) : item.length), 0);
      return { data, usage: { promptTokens } };
    },

    async images(request, signal) {
      signal.throwIfAborted();
      const data = Array.from({ length: request.n }, (_, variant) => {
        const png = promptPicture(request.prompt, variant).toString("base64");
        return request.responseFormat === "url" ? { url: `data:image/png;base64,${png}` } : { b64_json: png };
      });
      return { data };
    },

    async transcribe(request, signal) {
      signal.throwIfAborted();
      return transcript(request);
    },

    async speech(request, signal) {
      signal.throwIfAborted();
      const samples = toneSamples(request.input, request.voice);
      // Every format but raw PCM is answered as WAV, and labelled as such.
      const audio = request.responseFormat === "pcm" ? Buffer.from(samples.buffer) : wav(samples);
      return {
        contentType: request.responseFormat === "pcm" ? "audio/pcm" : "audio/wav",
        body: (async function* () {
          yield new Uint8Array(audio);
        })(),
      };
    },

    async rerank(request, signal) {
      signal.throwIfAborted();
      const query = words(request.query);
      const results = request.documents
        .map((document, index) => ({ index, relevance_score: overlap(query, document) }))
        .sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index)
        .slice(0, request.topN);
      const promptTokens = [request.query, ...request.documents].reduce((sum, text) => sum + countTextTokens(text), 0);
      return { results, usage: { promptTokens } };
    },
  };
}
