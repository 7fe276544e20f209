import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import { scheduledMinCapacities, type WeeklyTrafficProfile } from './traffic-profile';

/** What takes scheduled actions: an Application Auto Scaling target, or a Lambda alias's scalable attribute. */
export interface ScheduleTaker {
  scaleOnSchedule(id: string, action: appscaling.ScalingSchedule): void;
}

/**
 * Adds to `target` the scheduled actions of `profile`: each raises (or restores) the minimum
 * capacity only, so target tracking keeps scaling between it and the target's maximum.
 */
export function scheduleTrafficProfile(
  target: ScheduleTaker,
  where: string,
  profile: WeeklyTrafficProfile,
  baseMinCapacity: number,
  maxCapacity: number,
): void {
  for (const action of scheduledMinCapacities(where, profile, baseMinCapacity, maxCapacity)) {
    target.scaleOnSchedule(action.id, {
      schedule: appscaling.Schedule.cron({ minute: String(action.minute), hour: String(action.hour), weekDay: action.weekDays }),
      minCapacity: action.minCapacity,
      timeZone: profile.timeZone,
    });
  }
}
