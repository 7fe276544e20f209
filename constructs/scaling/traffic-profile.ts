import type { Duration, TimeZone } from 'aws-cdk-lib';

/** A day of the week, as Application Auto Scaling's cron expressions name it. */
export enum DayOfWeek {
  MONDAY = 'MON',
  TUESDAY = 'TUE',
  WEDNESDAY = 'WED',
  THURSDAY = 'THU',
  FRIDAY = 'FRI',
  SATURDAY = 'SAT',
  SUNDAY = 'SUN',
}

/** One recurring peak of a {@link WeeklyTrafficProfile}: when it runs and how much capacity it needs. */
export interface TrafficPeak {
  /**
   * Days the peak starts on. A peak that runs past midnight (`endHour <= startHour`) belongs to
   * the day it starts on: `{ days: [FRIDAY], startHour: 20, endHour: 2 }` ends on Saturday at 02:00.
   * @default - every day
   */
  readonly days?: DayOfWeek[];
  /** Hour the load starts (0-23, in the profile's `timeZone`); capacity is raised `leadTime` before it. */
  readonly startHour: number;
  /**
   * Hour the load ends (1-24); the minimum capacity is restored then. At most `startHour` means
   * the peak ends on the next day.
   */
  readonly endHour: number;
  /** Least capacity to hold during the peak (instances, or provisioned concurrent executions). */
  readonly minCapacity: number;
}

/**
 * The weekly shape of the traffic, from which scheduled actions raise the minimum capacity ahead
 * of each peak and restore it after: target tracking reacts within minutes, and a new SageMaker
 * instance takes several more to start, so a known peak is better met with capacity already up.
 */
export interface WeeklyTrafficProfile {
  /** The peaks. Where peaks overlap, the larger `minCapacity` holds. */
  readonly peaks: TrafficPeak[];
  /**
   * Time zone of the hours.
   * @default - UTC
   */
  readonly timeZone?: TimeZone;
  /**
   * How long before each peak the minimum capacity is raised: about the time a new instance (or
   * provisioned concurrency) takes to be ready. A whole number of minutes, at most 6 hours.
   * @default Duration.minutes(15)
   */
  readonly leadTime?: Duration;
}

/** A scheduled action derived from a profile: at this time of the given days, set the minimum capacity. */
export interface ScheduledMinCapacity {
  /** Unique among the actions of one profile; usable as a construct id. */
  readonly id: string;
  readonly minute: number;
  readonly hour: number;
  /** Days in week order, as `MON,TUE` for a cron day-of-week field. */
  readonly weekDays: string;
  readonly minCapacity: number;
}

const DAYS = [DayOfWeek.MONDAY, DayOfWeek.TUESDAY, DayOfWeek.WEDNESDAY, DayOfWeek.THURSDAY, DayOfWeek.FRIDAY, DayOfWeek.SATURDAY, DayOfWeek.SUNDAY];
const MINUTES_PER_DAY = 24 * 60;
const MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY;
/** Application Auto Scaling allows 200 scheduled actions per scalable target. */
const MAX_SCHEDULED_ACTIONS = 200;

/**
 * The scheduled actions that give a scalable target the profile's minimum capacity over the week:
 * the required minimum is computed for every minute of the week (the largest of the peaks
 * covering it, each raised `leadTimeMinutes` early, else `baseMinCapacity`), and an action is
 * emitted at every change; changes at the same time and to the same capacity on several days
 * share one action. Pure, so that it can be tested without synthesizing.
 *
 * @param where the prop path for error messages, such as `autoScaling.trafficProfile`
 */
export function scheduledMinCapacities(
  where: string,
  profile: WeeklyTrafficProfile,
  baseMinCapacity: number,
  maxCapacity: number,
): ScheduledMinCapacity[] {
  const lead = profile.leadTime === undefined ? 15 : profile.leadTime.toSeconds() / 60;
  if (!Number.isInteger(lead) || lead < 0 || lead > 360) {
    throw new Error(`${where}.leadTime must be a whole number of minutes between 0 and 360; got ${profile.leadTime?.toHumanString()}`);
  }
  if (profile.peaks.length === 0) throw new Error(`${where}.peaks must name at least one peak`);

  const capacity = new Array<number>(MINUTES_PER_WEEK).fill(baseMinCapacity);
  profile.peaks.forEach((peak, i) => {
    const at = `${where}.peaks[${i}]`;
    if (!Number.isInteger(peak.startHour) || peak.startHour < 0 || peak.startHour > 23) {
      throw new Error(`${at}.startHour must be an integer hour 0-23; got ${peak.startHour}`);
    }
    if (!Number.isInteger(peak.endHour) || peak.endHour < 1 || peak.endHour > 24) {
      throw new Error(`${at}.endHour must be an integer hour 1-24; got ${peak.endHour}`);
    }
    if (!Number.isInteger(peak.minCapacity) || peak.minCapacity <= baseMinCapacity || peak.minCapacity > maxCapacity) {
      throw new Error(`${at}.minCapacity must be an integer above the minimum capacity (${baseMinCapacity}) and at most the maximum (${maxCapacity}); got ${peak.minCapacity}`);
    }
    const days = peak.days ?? DAYS;
    if (days.length === 0) throw new Error(`${at}.days must name at least one day (leave it out for every day)`);
    const hours = peak.endHour > peak.startHour ? peak.endHour - peak.startHour : peak.endHour + 24 - peak.startHour;
    for (const day of days) {
      const index = DAYS.indexOf(day);
      if (index < 0) throw new Error(`${at}.days has "${day}", which is not a DayOfWeek`);
      const start = index * MINUTES_PER_DAY + peak.startHour * 60 - lead;
      for (let m = start; m < start + lead + hours * 60; m++) {
        const w = ((m % MINUTES_PER_WEEK) + MINUTES_PER_WEEK) % MINUTES_PER_WEEK;
        capacity[w] = Math.max(capacity[w], peak.minCapacity);
      }
    }
  });
  if (capacity.every((c) => c === capacity[0])) {
    throw new Error(`${where}: the peaks cover the whole week at ${capacity[0]}; raise the minimum capacity itself instead of scheduling it`);
  }

  // One action per (time of day, capacity), with the days it happens on.
  const byTime = new Map<string, { minute: number; hour: number; minCapacity: number; days: Set<number> }>();
  for (let w = 0; w < MINUTES_PER_WEEK; w++) {
    const previous = capacity[(w + MINUTES_PER_WEEK - 1) % MINUTES_PER_WEEK];
    if (capacity[w] === previous) continue;
    const minuteOfDay = w % MINUTES_PER_DAY;
    const key = `${minuteOfDay}/${capacity[w]}`;
    const action = byTime.get(key)
      ?? { minute: minuteOfDay % 60, hour: Math.floor(minuteOfDay / 60), minCapacity: capacity[w], days: new Set<number>() };
    action.days.add(Math.floor(w / MINUTES_PER_DAY));
    byTime.set(key, action);
  }
  const actions = [...byTime.values()]
    .sort((a, b) => a.hour * 60 + a.minute - (b.hour * 60 + b.minute) || a.minCapacity - b.minCapacity)
    .map((a) => {
      const days = [...a.days].sort((x, y) => x - y).map((d) => DAYS[d]);
      const hhmm = `${String(a.hour).padStart(2, '0')}${String(a.minute).padStart(2, '0')}`;
      return {
        id: `Min${a.minCapacity}At${hhmm}${days.length === 7 ? 'Daily' : days.map((d) => d[0] + d.slice(1).toLowerCase()).join('')}`,
        minute: a.minute,
        hour: a.hour,
        weekDays: days.length === 7 ? '*' : days.join(','),
        minCapacity: a.minCapacity,
      };
    });
  if (actions.length > MAX_SCHEDULED_ACTIONS) {
    throw new Error(`${where} needs ${actions.length} scheduled actions, more than the ${MAX_SCHEDULED_ACTIONS} Application Auto Scaling allows per scalable target; give fewer peaks`);
  }
  return actions;
}
