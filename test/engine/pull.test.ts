/**
 * PullTracker on the records a real pull wrote (20.10.24, the bench's image from the open
 * loopback registry, read with curl off the engine's socket): when it knows the pull finished,
 * which the JSON answer's inspect waits for instead of the body's end.
 */
import { describe, expect, it } from 'vitest'
import { PullTracker } from '../../src/engine/pull.ts'

const REF = '127.0.0.1:25000/dockgate-bench/pull-15176-pmx8870u0:v1'
const DIGEST = 'sha256:f41dc20773680ea2eda37ae79f13faab368c583be14d07cf62fb09f8bfcfb1ac'
const LAYER = 'a639e5ad1147'
const progress = (current: number) => ({ current, total: 30009361 })

/** A fresh pull, as the engine wrote it (the progress bars left out). */
const FRESH: object[] = [
  { status: 'Pulling from dockgate-bench/pull-15176-pmx8870u0', id: 'v1' },
  { status: 'Already exists', progressDetail: {}, id: '1793f8e9dbaa' },
  { status: 'Pulling fs layer', progressDetail: {}, id: LAYER },
  { status: 'Downloading', progressDetail: progress(327680), id: LAYER },
  { status: 'Verifying Checksum', progressDetail: {}, id: LAYER },
  { status: 'Download complete', progressDetail: {}, id: LAYER },
  { status: 'Extracting', progressDetail: progress(30009361), id: LAYER },
  { status: 'Pull complete', progressDetail: {}, id: LAYER },
  { status: `Digest: ${DIGEST}` },
  { status: `Status: Downloaded newer image for ${REF}` },
]

describe('PullTracker', () => {
  it('knows the pull finished at the Status record, and not before', () => {
    const tracker = new PullTracker()
    for (const record of FRESH.slice(0, -1)) {
      tracker.take(record, REF)
      expect(tracker.finished).toBe(false)
    }
    tracker.take(FRESH.at(-1), REF)
    expect(tracker).toMatchObject({ finished: true, upToDate: false, digest: DIGEST })
    expect(tracker.progress().overall).toMatchObject({ layers: 2, layersDone: 2 })
  })

  it('knows an image that was up to date finished too', () => {
    const tracker = new PullTracker()
    tracker.take({ status: 'Pulling from dockgate-bench/pull-15176-pmx8870u0', id: 'v1' }, REF)
    tracker.take({ status: `Digest: ${DIGEST}` }, REF)
    expect(tracker.finished).toBe(false)
    tracker.take({ status: `Status: Image is up to date for ${REF}` }, REF)
    expect(tracker).toMatchObject({ finished: true, upToDate: true })
  })

  it('never counts a pull that failed in-band as finished', () => {
    const tracker = new PullTracker()
    tracker.take(FRESH[0], REF)
    expect(() =>
      tracker.take({ errorDetail: { message: 'unexpected EOF' }, error: 'unexpected EOF' }, REF),
    ).toThrow()
    expect(tracker.finished).toBe(false)
  })
})
