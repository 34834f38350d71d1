// Captures microphone samples as mono float32 PCM and hands them to the page in blocks.
// (MediaRecorder would give webm/opus, which libsndfile cannot read; the page writes a WAV.)
class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(4096);
    this.used = 0;
    this.port.onmessage = () => {  // any message: send what is buffered, then say so
      this.flush();
      this.port.postMessage("flushed");
    };
  }

  flush() {
    if (this.used > 0) {
      const out = this.block.slice(0, this.used);
      this.port.postMessage(out, [out.buffer]);
      this.used = 0;
    }
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length > 0) {
      const n = channels[0].length;
      for (let i = 0; i < n; i++) {
        let sum = 0;
        for (let c = 0; c < channels.length; c++) sum += channels[c][i];
        this.block[this.used++] = sum / channels.length;
        if (this.used === this.block.length) this.flush();
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
