import { describe, expect, it } from 'vitest'
import {
  SERVICE_ID_LIKE,
  serviceSpec,
  TASK_RESTARTS,
  withReplicas,
} from '../../src/domain/services.ts'

const MiB = 1024 * 1024
const resources = { memory: 64 * MiB, pids: 128, cpus: 0.5 }
const IMAGE_ID = `sha256:${'a'.repeat(64)}`

describe('the task template the gateway builds', () => {
  const spec = serviceSpec(
    {
      image: 'busybox:1',
      name: 'web',
      cmd: ['sleep', '1'],
      entrypoint: ['/bin/sh', '-c'],
      env: { A: '1' },
      labels: { team: 'blue' },
      workingDir: '/srv',
      replicas: 3,
    },
    'alice',
    resources,
    IMAGE_ID,
  )

  it('drops every capability, mounts nothing, publishes nothing and attaches to no network', () => {
    const container = spec.TaskTemplate.ContainerSpec
    expect(container.CapabilityDrop).toEqual(['ALL'])
    expect(container.CapabilityAdd).toEqual([])
    expect(container.Mounts).toEqual([])
    expect(container.Secrets).toEqual([])
    expect(container.Configs).toEqual([])
    expect(spec.TaskTemplate.Networks).toEqual([])
    expect(spec.EndpointSpec).toEqual({ Mode: 'vip', Ports: [] })
  })

  it('bounds memory, CPU, pids, restarts and logs', () => {
    expect(spec.TaskTemplate.Resources.Limits).toEqual({
      MemoryBytes: 64 * MiB,
      NanoCPUs: 500_000_000,
      Pids: 128,
    })
    expect(spec.TaskTemplate.RestartPolicy).toEqual(TASK_RESTARTS)
    expect(TASK_RESTARTS.MaxAttempts).toBeGreaterThan(0)
    expect(spec.TaskTemplate.LogDriver).toEqual({
      Name: 'json-file',
      Options: { 'max-size': '10m', 'max-file': '3' },
    })
  })

  it('puts the owner label on the service and on its containers, over any the request sent', () => {
    const sneaky = serviceSpec(
      { image: 'busybox', replicas: 1, labels: { 'dockgate.owner': 'mallory' } },
      'alice',
      resources,
      IMAGE_ID,
    )
    expect(sneaky.Labels['dockgate.owner']).toBe('alice')
    expect(sneaky.TaskTemplate.ContainerSpec.Labels['dockgate.owner']).toBe('alice')
    expect(spec.Labels).toEqual({
      team: 'blue',
      'dockgate.owner': 'alice',
      'dockgate.image': 'busybox:1',
    })
  })

  it('maps the container fields onto the engine’s words', () => {
    expect(spec.TaskTemplate.ContainerSpec).toMatchObject({
      // The manager's image id: no node pulls a reference from its registry
      Image: IMAGE_ID,
      Command: ['/bin/sh', '-c'],
      Args: ['sleep', '1'],
      Env: ['A=1'],
      Dir: '/srv',
      TTY: false,
    })
    expect(spec.Mode).toEqual({ Replicated: { Replicas: 3 } })
    expect(spec.Name).toBe('web')
  })

  it('attaches only the networks it is given (the route lets through those the policy names)', () => {
    const attached = serviceSpec(
      { image: 'busybox', replicas: 1, networks: ['jobs'] },
      'alice',
      resources,
      IMAGE_ID,
    )
    expect(attached.TaskTemplate.Networks).toEqual([{ Target: 'jobs' }])
  })

  it('changes nothing but the replicas on a scale', () => {
    const before = { Name: 'web', Mode: { Replicated: { Replicas: 1 } }, TaskTemplate: { x: 1 } }
    expect(withReplicas(before, 5)).toEqual({ ...before, Mode: { Replicated: { Replicas: 5 } } })
  })

  it('reads 25 lowercase letters and digits as a service id', () => {
    expect(SERVICE_ID_LIKE.test('b0yxy6wrgsqqdjg9x0r9v7cth')).toBe(true)
    expect(SERVICE_ID_LIKE.test('web')).toBe(false)
  })
})
