import { Duration } from 'aws-cdk-lib';
import { DayOfWeek, scheduledMinCapacities, type WeeklyTrafficProfile } from '../../constructs/scaling/traffic-profile';

const W = 'tier: autoScaling.trafficProfile';
const plan = (profile: WeeklyTrafficProfile, base = 1, max = 10) =>
  scheduledMinCapacities(W, profile, base, max).map((a) => `${a.weekDays} ${String(a.hour).padStart(2, '0')}:${String(a.minute).padStart(2, '0')} -> ${a.minCapacity}`);

describe('scheduledMinCapacities', () => {
  test('a weekday peak is raised 15 minutes ahead by default and restored when it ends', () => {
    const days = [DayOfWeek.MONDAY, DayOfWeek.TUESDAY, DayOfWeek.WEDNESDAY, DayOfWeek.THURSDAY, DayOfWeek.FRIDAY];
    expect(plan({ peaks: [{ days, startHour: 9, endHour: 17, minCapacity: 3 }] })).toEqual([
      'MON,TUE,WED,THU,FRI 08:45 -> 3',
      'MON,TUE,WED,THU,FRI 17:00 -> 1',
    ]);
  });

  test('every day without days: one daily action each way', () => {
    expect(plan({ peaks: [{ startHour: 18, endHour: 22, minCapacity: 2 }], leadTime: Duration.minutes(30) })).toEqual(['* 17:30 -> 2', '* 22:00 -> 1']);
  });

  test('a peak past midnight ends on the next day, Sunday wrapping to Monday', () => {
    expect(plan({ peaks: [{ days: [DayOfWeek.FRIDAY, DayOfWeek.SUNDAY], startHour: 20, endHour: 2, minCapacity: 4 }] })).toEqual([
      'MON,SAT 02:00 -> 1',
      'FRI,SUN 19:45 -> 4',
    ]);
  });

  test('a lead time that crosses midnight raises on the day before', () => {
    expect(plan({ peaks: [{ days: [DayOfWeek.MONDAY], startHour: 0, endHour: 6, minCapacity: 2 }], leadTime: Duration.minutes(45) })).toEqual([
      'MON 06:00 -> 1',
      'SUN 23:15 -> 2',
    ]);
  });

  test('overlapping peaks hold the larger capacity, and a peak running into the next day\'s is not interrupted', () => {
    expect(plan({
      peaks: [
        { days: [DayOfWeek.MONDAY], startHour: 8, endHour: 20, minCapacity: 2 },
        { days: [DayOfWeek.MONDAY], startHour: 12, endHour: 14, minCapacity: 5 },
      ],
    })).toEqual(['MON 07:45 -> 2', 'MON 11:45 -> 5', 'MON 14:00 -> 2', 'MON 20:00 -> 1']);
    // Monday 0-24 and Tuesday 0-24 make one peak from Sunday 23:45 to Wednesday 00:00.
    expect(plan({ peaks: [{ days: [DayOfWeek.MONDAY, DayOfWeek.TUESDAY], startHour: 0, endHour: 24, minCapacity: 2 }] })).toEqual([
      'WED 00:00 -> 1',
      'SUN 23:45 -> 2',
    ]);
  });

  test('a lead time of 0 raises at the start hour', () => {
    expect(plan({ peaks: [{ days: [DayOfWeek.SATURDAY], startHour: 10, endHour: 11, minCapacity: 2 }], leadTime: Duration.minutes(0) })).toEqual([
      'SAT 10:00 -> 2',
      'SAT 11:00 -> 1',
    ]);
  });

  test('action ids are unique and name capacity, time and days', () => {
    const actions = scheduledMinCapacities(W, { peaks: [{ days: [DayOfWeek.FRIDAY], startHour: 20, endHour: 2, minCapacity: 4 }] }, 1, 10);
    expect(actions.map((a) => a.id)).toEqual(['Min1At0200Sat', 'Min4At1945Fri']);
  });

  test.each([
    ['startHour 24', { peaks: [{ startHour: 24, endHour: 2, minCapacity: 2 }] }, /trafficProfile\.peaks\[0\]\.startHour must be an integer hour 0-23; got 24/],
    ['endHour 0', { peaks: [{ startHour: 3, endHour: 0, minCapacity: 2 }] }, /peaks\[0\]\.endHour must be an integer hour 1-24/],
    ['fractional hour', { peaks: [{ startHour: 8.5, endHour: 10, minCapacity: 2 }] }, /peaks\[0\]\.startHour/],
    ['minCapacity at the base', { peaks: [{ startHour: 8, endHour: 10, minCapacity: 1 }] }, /peaks\[0\]\.minCapacity must be an integer above the minimum capacity \(1\) and at most the maximum \(10\); got 1/],
    ['minCapacity above the max', { peaks: [{ startHour: 8, endHour: 10, minCapacity: 11 }] }, /peaks\[0\]\.minCapacity.*got 11/],
    ['no days', { peaks: [{ days: [], startHour: 8, endHour: 10, minCapacity: 2 }] }, /peaks\[0\]\.days must name at least one day/],
    ['no peaks', { peaks: [] }, /trafficProfile\.peaks must name at least one peak/],
    ['seconds in the lead time', { peaks: [{ startHour: 8, endHour: 10, minCapacity: 2 }], leadTime: Duration.seconds(90) }, /trafficProfile\.leadTime must be a whole number of minutes/],
    ['lead time over 6 hours', { peaks: [{ startHour: 8, endHour: 10, minCapacity: 2 }], leadTime: Duration.hours(7) }, /leadTime.*between 0 and 360/],
    ['the whole week', { peaks: [{ startHour: 0, endHour: 24, minCapacity: 2 }] }, /cover the whole week.*raise the minimum capacity itself/],
  ] as Array<[string, WeeklyTrafficProfile, RegExp]>)('%s is refused, naming the prop', (_name, profile, error) => {
    expect(() => scheduledMinCapacities(W, profile, 1, 10)).toThrow(error);
  });

  test('the error names the peak by its index', () => {
    const peaks = [{ startHour: 8, endHour: 10, minCapacity: 2 }, { startHour: 30, endHour: 1, minCapacity: 2 }];
    expect(() => scheduledMinCapacities(W, { peaks }, 1, 10))
      .toThrow(/^tier: autoScaling\.trafficProfile\.peaks\[1\]\.startHour/);
  });
});
