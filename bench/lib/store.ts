import type { DeviceStore } from '../../src/app/store.js'
import { newId } from '../../src/app/ids.js'
import { initialProps } from '../../src/domain/device.js'

/**
 * A lock created in `workspaceId` through the store, as `/devices/create` records one (with its `device.added` event),
 * already online: what the store-alone scripts send their commands to. Returns its id.
 */
export async function addOnlineLock(
  devices: Pick<DeviceStore, 'create'>,
  workspaceId: string,
  displayName: string,
  now: () => string,
): Promise<string> {
  const deviceId = newId()
  await devices.create({
    device: {
      device_id: deviceId,
      workspace_id: workspaceId,
      display_name: displayName,
      nickname: null,
      custom_metadata: {},
      created_at: now(),
      can_remotely_lock: true,
      can_remotely_unlock: true,
      props: { ...initialProps(), online: true },
    },
    secretHash: 'x'.repeat(64),
    event: { event_type: 'device.added', workspace_id: workspaceId, device_id: deviceId, occurred_at: now() },
  })
  return deviceId
}
