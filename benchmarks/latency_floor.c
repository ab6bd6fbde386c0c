/* The machine's own wake-up latency at SCHED_FIFO, without Python: the floor under any servo loop here.
 * Usage: latency_floor PERIOD_NS SECONDS.  Sleeps to absolute deadlines on CLOCK_MONOTONIC (as the servo
 * clock does) and prints how late it woke: the largest lateness, the mean, and how many wake-ups were more
 * than 1 ms and 5 ms late.  rt=0 means SCHED_FIFO was granted.  Built and run by latency_floor.py. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sched.h>
#include <sys/mman.h>
int main(int argc,char**argv){
  long period_ns = atol(argv[1]); int secs = atoi(argv[2]);
  struct sched_param sp={.sched_priority=80};
  int rt = sched_setscheduler(0,SCHED_FIFO,&sp);
  mlockall(MCL_CURRENT|MCL_FUTURE);
  struct timespec next, now; clock_gettime(CLOCK_MONOTONIC,&next);
  long n = secs*1000000000L/period_ns; long maxlat=0, over1=0, over5=0; double sum=0;
  long hist[8]={0};
  for(long i=0;i<n;i++){
    next.tv_nsec += period_ns; while(next.tv_nsec>=1000000000){next.tv_nsec-=1000000000;next.tv_sec++;}
    clock_nanosleep(CLOCK_MONOTONIC,TIMER_ABSTIME,&next,NULL);
    clock_gettime(CLOCK_MONOTONIC,&now);
    long lat=(now.tv_sec-next.tv_sec)*1000000000L+(now.tv_nsec-next.tv_nsec);
    if(lat>maxlat)maxlat=lat; sum+=lat;
    if(lat>1000000)over1++; if(lat>5000000)over5++;
  }
  printf("rt=%d period=%ldus n=%ld max=%.3fms mean=%.1fus >1ms=%ld >5ms=%ld\n",rt,period_ns/1000,n,maxlat/1e6,sum/n/1000,over1,over5);
}
