import { describe, expect, it } from 'vitest'
import { redactEnv, redactLabels, refuseSecretSelectors } from '../../src/domain/redaction.ts'
import { ProblemError } from '../../src/errors.ts'
import { engineInspect, testEngineEnv } from '../support/engine.ts'
import { postJson, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'

describe('redaction', () => {
  it('shows env keys, and values only for exposed keys', () => {
    expect(redactEnv(['A=1', 'B=two=2', 'NOVALUE'], ['B'])).toEqual({
      A: null,
      B: 'two=2',
      NOVALUE: null,
    })
  })

  it('hides the values of secret-looking label keys, whatever their case', () => {
    expect(
      redactLabels({ 'db.PASSWORD': 'x', 'app.api-key': 'y', app: 'demo' }, [
        '*password*',
        '*api*key*',
      ]),
    ).toEqual({
      'db.PASSWORD': null,
      'app.api-key': null,
      app: 'demo',
    })
  })

  it('refuses a selector on the value of a secret-looking key, in any case, but not on its key alone', () => {
    const patterns = ['*password*', '*api*key*']
    expect(() =>
      refuseSecretSelectors(['app=demo', 'DB_Password', 'team'], patterns, 'query.label'),
    ).not.toThrow()
    let refused: unknown
    try {
      refuseSecretSelectors(
        ['app=demo', 'DB_Password=hunter2', 'app.api-key='],
        patterns,
        'query.label',
      )
    } catch (error) {
      refused = error
    }
    expect(refused).toBeInstanceOf(ProblemError)
    expect(refused).toMatchObject({ status: 400, code: 'validation-failed' })
    const params = (refused as ProblemError).invalidParams ?? []
    expect(params.map((p) => p.name)).toEqual(['query.label', 'query.label'])
    expect(JSON.stringify(params)).not.toMatch(/hunter2/)
  })

  it('keeps secrets out of inspect and list answers, while the engine still has them', async () => {
    const gw = await testGateway()
    const run = uniqueName('redact')
    const { body } = await gw.json(
      '/v1/containers',
      postJson({
        image: testEngineEnv().image,
        name: run,
        cmd: ['true'],
        env: { DATABASE_URL: 'postgres://user:hunter2@db' },
        labels: { [TEST_LABEL]: TEST_RUN, run, 'vault.token': 's.abc123' },
      }),
    )
    expect(body.config.env).toEqual({ DATABASE_URL: null })
    expect(body.config.labels).toMatchObject({ run, 'vault.token': null })
    const listed = (await gw.json(`/v1/containers?all=true&label=run=${run}`)).body.containers[0]
    expect(listed.labels['vault.token']).toBeNull()
    expect(JSON.stringify(listed) + JSON.stringify(body)).not.toMatch(/hunter2|s\.abc123/)
    expect((await engineInspect(body.id))?.Config.Labels['vault.token']).toBe('s.abc123')
  })
})
